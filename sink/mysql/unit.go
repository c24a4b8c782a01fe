package mysql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
)

// The sink's side of the target protocol (sink.Target, sink.Unit): a unit
// is one target transaction on one pooled connection, sent as one
// multi-statement text with its COMMIT when it is of ordinary size:
//
//	INSERT INTO hamal.origin_marker …;        -- Marker (with Config.Site)
//	DELETE …;                                 -- Write: the net effect,
//	SELECT <row key> … FOR UPDATE;            --   the rows REPLACE will remove for a
//	                                          --   unique value (one-way, collision.go),
//	REPLACE INTO …;
//	INSERT INTO hamal.applied …;              --   and the fence (with Config.Site)
//	SET autocommit=IF(IS_USED_LOCK('hamal/<channel>') <=> <lock session>,
//	    @@autocommit, 2);                     -- ProveLease
//	COMMIT
//
// The proof comes after the data on purpose: by then every row the unit
// writes is locked, so a successor that took the lock after the proof ran
// can only write those rows after this unit commits or rolls back, and
// nothing this process writes can land on top of the successor's. The
// server runs a multi-statement text in order and stops at the first
// error, so a failed proof (error 1231: 2 is no value of autocommit)
// leaves COMMIT unsent and Abort rolls the unit back. Writes are idempotent
// by shape (full after-images by row key), so a one-way channel needs no
// fence record; with Config.Site the unit records its Txns' positions in
// <hamal>.applied, for conflict detection to tell a replay (fence.go).

var (
	_ sink.Target = (*Sink)(nil)
	_ sink.Unit   = (*unit)(nil)
)

// Apply applies a batch through the target protocol (sink.Apply): per run
// of one path, one target transaction holding the origin marker, the
// batch's net effect and the lease proof, or a DDL Txn (alone in its
// batch) on its own connection. It returns after COMMIT. Errors are
// transient (retry.IsTransient: deadlock, lock wait timeout, lost
// connection, lease being re-acquired) or fatal (ErrLeaseHeld among
// them), and name the table, the position of the unit's first Txn and the
// cause.
func (s *Sink) Apply(ctx context.Context, batch []*event.Txn) error {
	return sink.Apply(ctx, s, batch)
}

// Class classifies an error of a unit (sink.Target).
func (s *Sink) Class(err error) sink.Class {
	var se *stmtError
	if errors.As(err, &se) && se.server {
		return classify(se.err)
	}
	return sink.ClassFatal
}

// Begin opens a unit (sink.Target): a DDL runs on its own connection at
// Commit, a run of heartbeats writes nothing, and anything else takes a
// pooled connection until Commit or Abort.
func (s *Sink) Begin(ctx context.Context, txns []*event.Txn) (sink.Unit, error) {
	if s.closed.Load() {
		return nil, errors.New("mysql sink: Apply after Close")
	}
	// The lease's in-memory state only saves a unit that could not
	// commit; the proof inside the unit is what fences.
	if err := s.lease.check(); err != nil {
		return nil, err
	}
	rows := 0
	for _, txn := range txns {
		if txn.Kind == event.KindDDL {
			if len(txns) != 1 {
				return nil, fmt.Errorf("a DDL Txn must be alone in its batch, got a batch of %d", len(txns))
			}
			return &ddlUnit{s: s, txn: txn}, nil
		}
		if txn.Kind != event.KindHeartbeat {
			rows += len(txn.Changes)
		}
	}
	if rows == 0 {
		return emptyUnit{}, nil
	}
	slot, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.connect(ctx, slot); err != nil {
		s.release(slot)
		return nil, err
	}
	// go-mysql has no context support: closing the socket is what
	// interrupts a statement when ctx ends.
	netConn := slot.c.Conn.Conn
	u := &unit{applier: applier{s: s, slot: slot, st: &slot.st}, txns: txns,
		stop: context.AfterFunc(ctx, func() { _ = netConn.Close() })}
	u.st.reset()
	return u, nil
}

// unit is one target transaction on a pooled connection.
type unit struct {
	applier
	txns []*event.Txn
	stop func() bool // stops the context's interruption
	err  error       // the first error, for Abort
}

// fail records the unit's first error, naming the table of the statement
// that failed.
func (u *unit) fail(err error) error {
	if err == nil {
		return nil
	}
	var se *stmtError
	if errors.As(err, &se) && se.table != "" && !errors.Is(err, ErrLeaseHeld) {
		err = fmt.Errorf("table %s: %w", se.table, err)
	}
	if u.err == nil {
		u.err = err
	}
	return err
}

// Marker queues the origin marker upsert, the transaction's first
// statement, with Config.Site set.
func (u *unit) Marker(_ context.Context, m sink.Marker) error {
	if u.s.cfg.Site == "" {
		return nil
	}
	b := u.appendMarker(u.st.buf[:0], m)
	u.st.buf = b[:0]
	return u.fail(u.exec(b, u.s.cfg.HamalSchema+".origin_marker"))
}

// Write queues the net effect of the unit's Txns (reading the target
// where conflict detection needs it) and clears their unsynced owners.
func (u *unit) Write(context.Context) error {
	for _, txn := range u.txns {
		if txn.Kind == event.KindHeartbeat {
			continue
		}
		u.txn = txn
		for i := range txn.Changes {
			if err := u.change(&txn.Changes[i]); err != nil {
				return u.fail(err)
			}
		}
	}
	if err := u.flush(); err != nil {
		return u.fail(err)
	}
	if err := u.clearOwners(originOf(u.txns[0])); err != nil {
		return u.fail(err)
	}
	if err := u.recordForeign(); err != nil {
		return u.fail(err)
	}
	return u.fail(u.fence(u.txns))
}

// ProveLease queues the lease proof, the last statement before COMMIT.
func (u *unit) ProveLease(context.Context) error {
	b := u.s.lease.appendProof(u.st.buf[:0])
	u.st.buf = b[:0]
	return u.fail(u.exec(b, leaseProofStatement))
}

// Commit sends what is queued and COMMIT in one round trip.
func (u *unit) Commit(context.Context) error {
	err := u.send(true)
	if err != nil {
		return u.fail(u.proofError(err))
	}
	interrupted := !u.stop()
	if interrupted {
		// COMMIT answered, but ctx closed the socket meanwhile.
		u.s.drop(u.slot)
	}
	u.s.countReplaced(u.st.replaced)
	u.slot.lastUsed = time.Now()
	u.st.reset()
	u.s.release(u.slot)
	return nil
}

// proofError turns the failure of the lease proof statement into what it
// means (see lease.proofFailed); other errors pass unchanged.
func (u *unit) proofError(err error) error {
	var se *stmtError
	if !errors.As(err, &se) || se.table != leaseProofStatement {
		return err
	}
	if serverCode(se.err) != erWrongValueForVar {
		return &stmtError{table: u.s.cfg.HamalSchema + " lease proof", err: se.err, server: true}
	}
	return u.s.lease.proofFailed(u.slot.c)
}

// Abort rolls the transaction back, or drops the connection when its
// state is unknown (lost, or interrupted by ctx).
func (u *unit) Abort() {
	interrupted := !u.stop()
	switch {
	case interrupted || u.slot.c == nil:
		u.s.drop(u.slot)
	case u.err != nil && u.s.Class(u.err) == sink.ClassConnLost:
		u.s.log.Warn("target connection lost; reconnecting on next use", "err", u.err)
		u.s.drop(u.slot)
	default:
		if _, err := u.slot.c.Execute("ROLLBACK"); err != nil {
			u.s.drop(u.slot)
		}
	}
	u.st.reset()
	u.s.release(u.slot)
}

// ddlUnit runs a DDL Txn at Commit (DDL commits on its own and cannot
// share a transaction): the lease proof is checked on the DDL's
// connection right before the statement.
type ddlUnit struct {
	s   *Sink
	txn *event.Txn
}

func (d *ddlUnit) Marker(context.Context, sink.Marker) error { return nil } // the path rides in a comment
func (d *ddlUnit) Write(context.Context) error               { return nil }
func (d *ddlUnit) ProveLease(context.Context) error          { return nil } // at Commit, on the DDL's connection
func (d *ddlUnit) Commit(context.Context) error              { return d.s.applyDDL(d.txn) }
func (d *ddlUnit) Abort()                                    {}

// emptyUnit is a run of heartbeats: nothing to write.
type emptyUnit struct{}

func (emptyUnit) Marker(context.Context, sink.Marker) error { return nil }
func (emptyUnit) Write(context.Context) error               { return nil }
func (emptyUnit) ProveLease(context.Context) error          { return nil }
func (emptyUnit) Commit(context.Context) error              { return nil }
func (emptyUnit) Abort()                                    {}
