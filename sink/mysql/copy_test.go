package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/tablecopy"
	"github.com/hamal-replication/hamal/test/harness"
)

// TestCopy: a chunk written with Copy lands in one transaction, carries
// the origin marker of its path when the sink has a site, and is refused
// (fatal, ErrLeaseHeld, nothing written) once another process took the
// lease, as Apply is.
func TestCopy(t *testing.T) {
	createSchema(t, "cp", "CREATE TABLE %[1]s.t (id INT PRIMARY KEY, v VARCHAR(10))")
	load := func(rows string) []tablecopy.Statement {
		return []tablecopy.Statement{{SQL: "LOAD DATA LOCAL INFILE 'x' REPLACE INTO TABLE cp.t CHARACTER SET binary (id, v)", Infile: []byte(rows)}}
	}
	t.Run("marker and rows in one transaction", func(t *testing.T) {
		s := openSink(t, Config{Channel: "copy-marked", Site: "b", Workers: 2})
		if err := s.Copy(context.Background(), "cp.t", []string{"a", "b"}, load("1\tone\n2\ttwo\n")); err != nil {
			t.Fatal(err)
		}
		if got := rows(t, "SELECT id, v FROM cp.t ORDER BY id"); got != "1,one;2,two" {
			t.Fatalf("rows %q", got)
		}
		if got := rows(t, "SELECT origin, path FROM hamal.origin_marker WHERE channel = 'copy-marked'"); got != "a,a,b" {
			t.Fatalf("marker %q, want origin a, path a,b", got)
		}
		// A statement failing mid-chunk rolls the whole chunk back.
		err := s.Copy(context.Background(), "cp.t", []string{"a", "b"}, append(load("3\tthree\n"), tablecopy.Statement{SQL: "INSERT INTO cp.nope VALUES (1)"}))
		if err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), "copy into cp.t") {
			t.Fatalf("failing chunk: %v, want a fatal error naming the table", err)
		}
		if got := rows(t, "SELECT COUNT(*) FROM cp.t WHERE id = 3"); got != "0" {
			t.Fatalf("a failed chunk left %s rows", got)
		}
	})
	t.Run("lease taken meanwhile fences Copy off", func(t *testing.T) {
		s := openSink(t, Config{Channel: "copy-fenced", Workers: 1, leasePingInterval: 50 * time.Millisecond})
		thief, err := server.Connect("")
		if err != nil {
			t.Fatal(err)
		}
		defer thief.Close()
		mustExec(t, fmt.Sprintf("KILL %d", s.lease.connID))
		if got, err := getLock(thief, s.lease.name, 5); err != nil || !got {
			t.Fatalf("thief GET_LOCK = %v, %v", got, err)
		}
		if err := harness.WaitFor(context.Background(), 10*time.Second, func() (bool, error) {
			return s.lease.state.Load() == leaseLost, nil
		}); err != nil {
			t.Fatalf("lease loss not noticed: %v", err)
		}
		err = s.Copy(context.Background(), "cp.t", nil, load("9\tnine\n"))
		if !errors.Is(err, ErrLeaseHeld) || retry.IsTransient(err) {
			t.Fatalf("Copy error = %v, want fatal ErrLeaseHeld", err)
		}
		if got := rows(t, "SELECT COUNT(*) FROM cp.t WHERE id = 9"); got != "0" {
			t.Errorf("a fenced-off sink copied: %q", got)
		}
	})
}
