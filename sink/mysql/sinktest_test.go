package mysql

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/sink/sinktest"
	"github.com/hamal-replication/hamal/test/harness"
)

// TestSinkConformance runs the shared sink suite against real MariaDB,
// with a site (so units carry the origin marker) and a keep-alive too slow
// to notice a lost lease, so only the proof inside the unit can stop it.
func TestSinkConformance(t *testing.T) {
	createSchema(t, "conf", "CREATE TABLE %[1]s.t (id INT PRIMARY KEY, v VARCHAR(8))")
	tbl := sinktest.RowTable("conf", "t")
	sinktest.Run(t, sinktest.Target{
		Open: func(t testing.TB, channel string) (sink.Sink, error) {
			return Open(context.Background(), Config{Addr: server.Addr, User: "root", Channel: channel, Workers: 2,
				Site: "sh", Logger: discardLogger(), leasePingInterval: time.Hour})
		},
		State: func(t testing.TB) string { return rows(t, "SELECT id, v FROM conf.t ORDER BY id") },
		// The replay fence of conflict detection (fence.go) remembers
		// what each channel applied: a fresh target forgets it too.
		Reset: func(t testing.TB) {
			mustExec(t, "DELETE FROM conf.t")
			if err := server.Exec("DELETE FROM hamal.applied"); err != nil && serverCode(err) != 1146 {
				t.Fatal(err)
			}
		},
		Txns: sinktest.RowWorkload("conf", "t"),
		LoseLease: func(t testing.TB, s sink.Sink) {
			l := s.(*Sink).lease
			mustExec(t, fmt.Sprintf("KILL %d", l.connID))
			err := harness.WaitFor(context.Background(), 10*time.Second, func() (bool, error) {
				return rows(t, "SELECT IS_USED_LOCK("+l.quoted+") IS NULL") == "1", nil
			})
			if err != nil {
				t.Fatalf("lock %s not released after KILL: %v", l.name, err)
			}
		},
		Markers: func(t testing.TB) string {
			return rows(t, "SELECT worker, origin, path, n FROM hamal.origin_marker WHERE channel='sinktest-marker' ORDER BY worker")
		},
		// The server refuses it (strict mode: too long for VARCHAR(8))
		// after the unit's marker ran.
		Failing: sinktest.RowTxn(99, event.Change{Op: event.OpInsert, Namespace: "conf.t", Table: tbl,
			After: []any{int32(99), strings.Repeat("x", 50)}}),
	})
}
