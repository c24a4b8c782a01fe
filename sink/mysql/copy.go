package mysql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/tablecopy"
)

// Copy writes one chunk of a table copy beside Apply (a new channel's
// snapshot, package snapshot): stmts, built by package tablecopy (a LOAD
// DATA LOCAL … REPLACE with its file, or REPLACE statements), run in one
// target transaction on a pool connection, fenced and marked as Apply's
// units are: the lease proof is its last statement before COMMIT (in the
// same round trip), and with Config.Site the origin marker of path (the
// loop guard's path of the copied rows) is its first, so the next hop
// drops the copy as it drops the channel's own writes. table names the
// target table in errors. Errors are classified as Apply's: transient
// (retry.IsTransient) or fatal. Copy may run on as many goroutines as the
// pool has connections, but not while the channel applies.
func (s *Sink) Copy(ctx context.Context, table string, path []string, stmts []tablecopy.Statement) error {
	if s.closed.Load() {
		return errors.New("mysql sink: Copy after Close")
	}
	if err := s.lease.check(); err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	slot, err := s.acquire(ctx)
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	defer s.release(slot)
	if err := s.connect(ctx, slot); err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	netConn := slot.c.Conn.Conn
	stop := context.AfterFunc(ctx, func() { _ = netConn.Close() })
	err = s.copyChunk(slot, table, path, stmts)
	interrupted := !stop()
	if interrupted {
		s.drop(slot)
	}
	if err == nil {
		slot.lastUsed = time.Now()
		return nil
	}
	if interrupted {
		return fmt.Errorf("copy into %s: %w", table, context.Cause(ctx))
	}
	return s.copyError(slot, table, err)
}

func (s *Sink) copyChunk(slot *pooledConn, table string, path []string, stmts []tablecopy.Statement) error {
	if s.cfg.Site != "" {
		a := applier{s: s, slot: slot, st: &slot.st}
		m, _ := sink.MarkerOf([]*event.Txn{{Kind: event.KindDML, Path: path}})
		b := a.appendMarker(slot.st.buf[:0], m)
		slot.st.buf = b[:0]
		if _, err := slot.c.Execute(string(b)); err != nil {
			return &stmtError{table: s.cfg.HamalSchema + ".origin_marker", err: err, server: true}
		}
	}
	for _, st := range stmts {
		if err := tablecopy.Exec(slot.c, st); err != nil {
			return &stmtError{table: table, err: err, server: true}
		}
	}
	// The lease proof and COMMIT in one round trip (see unit.go).
	q := string(s.lease.appendProof(slot.st.buf[:0])) + ";COMMIT"
	failedAt := 0
	var failed error
	if _, err := slot.c.ExecuteMultiple(q, func(_ *mysql.Result, err error) {
		if err != nil && failed == nil {
			failed = err
		} else if failed == nil {
			failedAt++
		}
	}); err != nil && failed == nil {
		failed = err
	}
	switch {
	case failed == nil:
		return nil
	case failedAt == 0 && serverCode(failed) == erWrongValueForVar:
		return s.lease.proofFailed(slot.c)
	case failedAt == 0:
		return &stmtError{table: table, err: fmt.Errorf("lease proof: %w", failed), server: true}
	}
	return &stmtError{err: fmt.Errorf("commit: %w", failed), server: true}
}

// copyError rolls back a failed chunk and words the error as batchError
// does for Apply.
func (s *Sink) copyError(slot *pooledConn, table string, err error) error {
	class := classFatal
	var se *stmtError
	if errors.As(err, &se) {
		if se.server {
			class = classify(se.err)
		}
		if se.table != "" {
			table = se.table
		}
	} else if retry.IsTransient(err) {
		class = classTransient
	}
	if class == classConnLost {
		s.log.Warn("target connection lost during a copy; reconnecting on next use", "err", err)
		s.drop(slot)
	} else if slot.c != nil {
		if _, rbErr := slot.c.Execute("ROLLBACK"); rbErr != nil {
			s.drop(slot)
		}
	}
	err = fmt.Errorf("copy into %s: %w", table, err)
	if class != classFatal {
		return retry.Transient(err)
	}
	return err
}
