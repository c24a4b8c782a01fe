package workload

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/hamal-replication/hamal/test/harness"
)

func TestWorkloadRuns(t *testing.T) {
	s := harness.MariaDB(t, harness.Options{ServerID: 1})
	s.MustExec(t, Schema...)
	var done atomic.Int64
	if err := Write(context.Background(), s.Addr, 1, 1000, 42, &done); err != nil {
		t.Fatalf("after %d txns: %v", done.Load(), err)
	}
	for table := range Tables {
		if n := s.MustQuery(t, "SELECT COUNT(*) FROM "+table)[0][0]; n == "0" {
			t.Errorf("%s is empty after the workload", table)
		}
	}
}
