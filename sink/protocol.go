package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	"github.com/hamal-replication/hamal/retry"
)

// The target protocol. Every sink applies a batch as units: one atomic
// unit on the target per run of Txns that share a path (a batch normally
// is one run; the channel splits batches by path). A unit, in this order:
//
//  1. writes the path marker (Marker), first, so a reader of the target's
//     log that splits a huge transaction meets it before any data;
//  2. writes the data of its Txns and their replay fence (Write);
//  3. proves the lease (ProveLease): the unit cannot commit unless this
//     process still holds the channel's lease on the target at the
//     commit point;
//  4. commits (Commit), or on any error is discarded (Abort), leaving
//     nothing of it on the target.
//
// Words, each meaning one thing:
//
//   - Lease: the right of one process to apply one channel to one target.
//     It is taken when the sink opens and released when it closes; a
//     second process's Open fails with ErrLeaseHeld while it is held. The
//     in-memory state of the lease is only a hint: what makes it strict is
//     the proof inside every unit, which covers the commit point (MySQL: a
//     statement after the data, before COMMIT, that fails unless
//     IS_USED_LOCK names this process's lock session, so every row the
//     unit wrote is locked before the proof and a successor's writes are
//     ordered after it; Redis: WATCH of the lease owner key, checked by
//     EXEC; MongoDB: a conditional update of the lease document in the
//     transaction, which conflicts with any takeover; Kafka: the
//     transactional producer's epoch, checked when the transaction ends).
//     "Fencing lease" in messages and docs is this lease; "fence" alone
//     is always the replay fence below.
//   - Marker: the loop guard's record of the unit's origin and path
//     (DESIGN.md, "Loop guard"), read back by the next hop's source.
//     Exactly one per unit, written only when the sink has a site.
//   - Fence (replay fence): what a replay consults so that no Txn is
//     applied twice: written in the unit with the data, so data and fence
//     never disagree. Engines whose writes converge when repeated (full
//     images keyed by primary key or _id: MySQL, MongoDB) need no fence
//     record for the data itself; Redis keeps source offsets per slot;
//     Kafka with exactly_once commits the position in its transaction;
//     MySQL with conflict detection (sink.site set) records each unit's
//     Txn positions in <hamal>.applied, so a replayed change is known as
//     a replay and never taken for a conflict; barriers record their
//     position where a repeat would not converge.
//
// Errors are classified once, here (Classify), from what the engine's
// Target says of its own errors (Class): ErrLeaseHeld is always fatal, a
// cancelled context is returned as the context's cause, everything else
// is wrapped with the batch's position and marked retry.Transient when
// the engine says a retry may succeed.

// Marker is the loop guard's record of a unit: the origin site of its
// Txns and the path they took.
type Marker struct {
	Origin string
	Path   []string
}

// PathText is the marker's path as loopguard formats it.
func (m Marker) PathText() string { return loopguard.FormatPath(m.Path) }

// MarkerOf returns the marker of txns: the origin and path of the first
// Txn that carries changes (a heartbeat writes nothing), or of the first
// Txn when none does. It fails when the data Txns do not share one path,
// since one marker describes the whole unit.
func MarkerOf(txns []*event.Txn) (Marker, error) {
	var first *event.Txn
	for _, txn := range txns {
		switch {
		case txn.Kind == event.KindHeartbeat:
		case first == nil:
			first = txn
		case !loopguard.SamePath(first, txn):
			return Marker{}, fmt.Errorf("batch mixes Txns of paths %v and %v; the channel must split batches by path", first.Path, txn.Path)
		}
	}
	if first == nil {
		if len(txns) == 0 {
			return Marker{}, nil
		}
		first = txns[0]
	}
	origin := first.Origin
	if origin == "" && len(first.Path) > 0 {
		origin = first.Path[0]
	}
	return Marker{Origin: origin, Path: first.Path}, nil
}

// Runs splits a batch into runs of consecutive Txns sharing one path
// (heartbeats join the run they are in), in order: one unit each.
func Runs(batch []*event.Txn) [][]*event.Txn {
	var runs [][]*event.Txn
	start := 0
	var lead *event.Txn // first data Txn of the current run
	for i, txn := range batch {
		if txn.Kind == event.KindHeartbeat {
			continue
		}
		if lead != nil && !loopguard.SamePath(lead, txn) {
			runs = append(runs, batch[start:i])
			start = i
			lead = nil
		}
		if lead == nil {
			lead = txn
		}
	}
	if start < len(batch) {
		runs = append(runs, batch[start:])
	}
	return runs
}

// Class is what the protocol does with an error of a unit.
type Class uint8

const (
	// ClassFatal stops the channel: retrying the batch cannot help.
	ClassFatal Class = iota + 1
	// ClassTransient retries the batch; the connection is usable.
	ClassTransient
	// ClassConnLost retries the batch on a new connection (the unit's
	// Abort drops the old one).
	ClassConnLost
)

func (c Class) String() string {
	switch c {
	case ClassFatal:
		return "fatal"
	case ClassTransient:
		return "transient"
	case ClassConnLost:
		return "connection lost"
	}
	return fmt.Sprintf("Class(%d)", uint8(c))
}

// Target is what an engine implements to apply units: the engine's side
// of the protocol. Begin may be called by up to the sink's worker count
// of goroutines at once; a Unit is used by one goroutine.
type Target interface {
	// Begin opens a unit for txns (non-empty, one path, in seq order; a
	// barrier alone). It may read what the unit needs (Redis: the lease
	// owner under WATCH and the fences) and holds a connection until
	// Commit or Abort.
	Begin(ctx context.Context, txns []*event.Txn) (Unit, error)
	// Class classifies an error returned by Begin or a Unit method.
	Class(err error) Class
}

// Unit is one atomic apply on the target. The protocol calls Marker,
// Write, ProveLease and Commit in that order, stopping at the first
// error, and then Abort unless Commit succeeded. An engine may send what
// the calls add in one round trip at Commit (MySQL: one multi-statement
// text). Abort must be safe after a failed Commit and must leave nothing
// of the unit on the target.
type Unit interface {
	// Marker adds the path marker (a no-op when the sink has no site).
	Marker(ctx context.Context, m Marker) error
	// Write adds the data of the unit's Txns and their replay fence,
	// skipping Txns the fence shows applied.
	Write(ctx context.Context) error
	// ProveLease adds the lease proof: the unit must fail to commit (with
	// an error wrapping ErrLeaseHeld once another process holds the
	// lease) unless this process holds the lease at the commit point.
	ProveLease(ctx context.Context) error
	// Commit makes the unit durable on the target, atomically.
	Commit(ctx context.Context) error
	// Abort discards the unit and releases its connection.
	Abort()
}

// Apply runs batch against t as the protocol says: one unit per run of
// one path, in order. It returns after every unit committed; on error
// nothing of the failed unit is on the target (earlier units are, which
// a retry of the whole batch replays safely: see Fence above). Errors are
// worded and classified by Classify.
func Apply(ctx context.Context, t Target, batch []*event.Txn) error {
	for _, run := range Runs(batch) {
		if err := applyUnit(ctx, t, run); err != nil {
			return Classify(ctx, t, run[0], err)
		}
	}
	return nil
}

func applyUnit(ctx context.Context, t Target, txns []*event.Txn) error {
	m, err := MarkerOf(txns)
	if err != nil {
		return err
	}
	u, err := t.Begin(ctx, txns)
	if err != nil {
		return err
	}
	if err = u.Marker(ctx, m); err == nil {
		if err = u.Write(ctx); err == nil {
			if err = u.ProveLease(ctx); err == nil {
				err = u.Commit(ctx)
			}
		}
	}
	if err != nil {
		u.Abort()
	}
	return err
}

// Classify words err of the unit starting at first and marks it
// retry.Transient when t's engine says a retry may help. ErrLeaseHeld is
// always fatal; a cancelled ctx returns its cause.
func Classify(ctx context.Context, t Target, first *event.Txn, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("apply batch at %s: %w", first.Pos, context.Cause(ctx))
	}
	wrapped := fmt.Errorf("apply batch at %s: %w", first.Pos, err)
	if errors.Is(err, ErrLeaseHeld) {
		return wrapped
	}
	if retry.IsTransient(err) {
		return retry.Transient(wrapped)
	}
	if c := t.Class(err); c == ClassTransient || c == ClassConnLost {
		return retry.Transient(wrapped)
	}
	return wrapped
}

// HolderID names this process as a lease holder, for lease records and
// the errors a successor shows: "<host> <pid> <random nonce>". The nonce
// tells two sinks of one process apart.
func HolderID() string {
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	host, _ := os.Hostname()
	return fmt.Sprintf("%s %d %s", host, os.Getpid(), hex.EncodeToString(nonce[:]))
}
