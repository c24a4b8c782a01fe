package mysql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/tablecopy"
)

// Copy writes one chunk of a table copy beside Apply (a new channel's
// snapshot, package snapshot): stmts, built by package tablecopy (a LOAD
// DATA LOCAL … REPLACE with its file, or REPLACE statements), run in one
// target transaction on a pool connection, fenced and marked as Apply's
// batches are: the lease is checked before and again right before COMMIT,
// and with Config.Site the origin marker of path (the loop guard's path of
// the copied rows) is the transaction's first statement, so the next hop
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
		b := a.appendMarker(slot.st.buf[:0], &event.Txn{Path: path})
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
	if err := s.lease.check(); err != nil {
		return err
	}
	if _, err := slot.c.Execute("COMMIT"); err != nil {
		return &stmtError{err: fmt.Errorf("commit: %w", err), server: true}
	}
	return nil
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
