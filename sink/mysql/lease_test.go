package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/tablecopy"
	"github.com/hamal-replication/hamal/test/harness"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestLease(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Addr: server.Addr, User: "root", Channel: "lease-a", Workers: 1}

	t.Run("second process is refused until the first closes", func(t *testing.T) {
		first, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Open(ctx, cfg)
		if !errors.Is(err, ErrLeaseHeld) || !strings.Contains(err.Error(), "lease-a") || !strings.Contains(err.Error(), server.Addr) {
			t.Fatalf("second Open error = %v, want ErrLeaseHeld naming the channel and target", err)
		}
		other := cfg
		other.Channel = "lease-b"
		b, err := Open(ctx, other)
		if err != nil {
			t.Fatalf("Open of another channel: %v", err)
		}
		b.Close()
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := Open(ctx, cfg)
		if err != nil {
			t.Fatalf("Open after Close: %v", err)
		}
		again.Close()
	})

	createSchema(t, "ls", "CREATE TABLE %[1]s.t (id INT PRIMARY KEY)")
	tbl := table("ls", "t", []string{"id"}, []int{0})
	fast := cfg
	fast.leasePingInterval = 50 * time.Millisecond

	t.Run("lost connection is re-acquired", func(t *testing.T) {
		s := openSink(t, fast)
		old := s.lease.connID
		mustExec(t, fmt.Sprintf("KILL %d", old))
		err := harness.WaitFor(context.Background(), 10*time.Second, func() (bool, error) {
			s.lease.mu.Lock()
			defer s.lease.mu.Unlock()
			return s.lease.conn != nil && s.lease.connID != old, nil
		})
		if err != nil {
			t.Fatalf("lease not re-acquired on a new connection: %v", err)
		}
		waitApply(t, s, func(err error) bool { return err == nil }, txn(ins(tbl, int32(1))))
		if s.lease.state.Load() != leaseHeld {
			t.Fatalf("lease state %d", s.lease.state.Load())
		}
	})

	t.Run("lease taken meanwhile fails Apply with ErrLeaseHeld", func(t *testing.T) {
		s := openSink(t, fast)
		thief, err := server.Connect("")
		if err != nil {
			t.Fatal(err)
		}
		defer thief.Close()
		mustExec(t, fmt.Sprintf("KILL %d", s.lease.connID))
		if got, err := getLock(thief, s.lease.name, 5); err != nil || !got {
			t.Fatalf("thief GET_LOCK = %v, %v", got, err)
		}
		// The loss is noticed on the next ping (the documented window).
		err = harness.WaitFor(context.Background(), 10*time.Second, func() (bool, error) {
			return s.lease.state.Load() == leaseLost, nil
		})
		if err != nil {
			t.Fatalf("lease loss not noticed: %v", err)
		}
		err = s.Apply(context.Background(), []*event.Txn{txn(ins(tbl, int32(2)))})
		if !errors.Is(err, ErrLeaseHeld) || retry.IsTransient(err) || !strings.Contains(err.Error(), "lease-a") {
			t.Fatalf("Apply error = %v, want fatal ErrLeaseHeld", err)
		}
		if got := rows(t, "SELECT COUNT(*) FROM ls.t WHERE id = 2"); got != "0" {
			t.Errorf("a fenced-off sink wrote: %q", got)
		}
	})

	// The proof inside the unit: with the keep-alive too slow to notice
	// anything, the in-memory state still says "held", and the unit
	// itself must refuse to commit.
	slow := cfg
	slow.leasePingInterval = time.Hour

	t.Run("unit proves the lease: lock taken by another session", func(t *testing.T) {
		s := openSink(t, slow)
		thief, err := server.Connect("")
		if err != nil {
			t.Fatal(err)
		}
		defer thief.Close()
		mustExec(t, fmt.Sprintf("KILL %d", s.lease.connID))
		if got, err := getLock(thief, s.lease.name, 5); err != nil || !got {
			t.Fatalf("thief GET_LOCK = %v, %v", got, err)
		}
		if s.lease.state.Load() != leaseHeld {
			t.Fatalf("keep-alive noticed the loss; the test needs it not to (state %d)", s.lease.state.Load())
		}
		err = s.Apply(context.Background(), []*event.Txn{txn(ins(tbl, int32(3)), ins(tbl, int32(4)))})
		if !errors.Is(err, ErrLeaseHeld) || retry.IsTransient(err) || !strings.Contains(err.Error(), "rolled back") {
			t.Fatalf("Apply error = %v, want fatal ErrLeaseHeld", err)
		}
		if got := rows(t, "SELECT COUNT(*) FROM ls.t WHERE id IN (3,4)"); got != "0" {
			t.Errorf("a unit without the lease committed: %q rows", got)
		}
		// Lost for good: the next unit fails before it starts.
		err = s.Apply(context.Background(), []*event.Txn{txn(ins(tbl, int32(5)))})
		if !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("second Apply error = %v, want ErrLeaseHeld", err)
		}
	})

	t.Run("unit proves the lease: lock session gone, nobody holds it", func(t *testing.T) {
		s := openSink(t, slow)
		mustExec(t, fmt.Sprintf("KILL %d", s.lease.connID))
		err := s.Apply(context.Background(), []*event.Txn{txn(ins(tbl, int32(6)))})
		if !retry.IsTransient(err) || errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("Apply error = %v, want transient", err)
		}
		if got := rows(t, "SELECT COUNT(*) FROM ls.t WHERE id = 6"); got != "0" {
			t.Errorf("a unit without the lease committed: %q rows", got)
		}
	})

	t.Run("DDL proves the lease", func(t *testing.T) {
		s := openSink(t, slow)
		thief, err := server.Connect("")
		if err != nil {
			t.Fatal(err)
		}
		defer thief.Close()
		mustExec(t, fmt.Sprintf("KILL %d", s.lease.connID))
		if got, err := getLock(thief, s.lease.name, 5); err != nil || !got {
			t.Fatalf("thief GET_LOCK = %v, %v", got, err)
		}
		err = s.Apply(context.Background(), []*event.Txn{ddl("ls", "CREATE TABLE ls.fenced (id INT PRIMARY KEY)")})
		if !errors.Is(err, ErrLeaseHeld) || retry.IsTransient(err) {
			t.Fatalf("DDL Apply error = %v, want fatal ErrLeaseHeld", err)
		}
		if got := rows(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='ls' AND TABLE_NAME='fenced'"); got != "0" {
			t.Errorf("a DDL without the lease ran")
		}
	})

	t.Run("copy proves the lease", func(t *testing.T) {
		s := openSink(t, slow)
		thief, err := server.Connect("")
		if err != nil {
			t.Fatal(err)
		}
		defer thief.Close()
		mustExec(t, fmt.Sprintf("KILL %d", s.lease.connID))
		if got, err := getLock(thief, s.lease.name, 5); err != nil || !got {
			t.Fatalf("thief GET_LOCK = %v, %v", got, err)
		}
		err = s.Copy(context.Background(), "ls.t", nil, []tablecopy.Statement{{SQL: "REPLACE INTO ls.t VALUES (7)"}})
		if !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("Copy error = %v, want ErrLeaseHeld", err)
		}
		if got := rows(t, "SELECT COUNT(*) FROM ls.t WHERE id = 7"); got != "0" {
			t.Errorf("a copy chunk without the lease committed: %q rows", got)
		}
	})
}

// waitApply retries Apply until ok accepts its error.
func waitApply(t *testing.T, s *Sink, ok func(error) bool, tx *event.Txn) {
	t.Helper()
	var last error
	err := harness.WaitFor(context.Background(), 10*time.Second, func() (bool, error) {
		last = s.Apply(context.Background(), []*event.Txn{tx})
		return ok(last), nil
	})
	if err != nil {
		t.Fatalf("Apply never reached the wanted outcome; last error: %v", last)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"wrong password", Config{Addr: server.Addr, User: "root", Password: "nope", Channel: "x"},
			[]string{"sink.user", "sink.password", server.Addr}},
		{"unreachable", Config{Addr: fmt.Sprintf("127.0.0.1:%d", port), User: "root", Channel: "x"},
			[]string{"cannot reach", "sink.addr"}},
		{"no addr", Config{Channel: "x"}, []string{"sink.addr"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
