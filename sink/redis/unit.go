package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/redisrepl"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
)

// The sink's side of the target protocol (sink.Target, sink.Unit). A unit
// is one MULTI/EXEC on one of the sink's connections:
//
//	WATCH hamal:lease-owner:<ch>; GET it; HMGET hamal:offset:<ch> …  Begin (one round trip; only the
//	                                                                 fence fields this sink does not know)
//	MULTI
//	SET hamal:origin:<ch>:<n> <origin>                               Marker (with Config.Site)
//	SELECT <db>; <each command of each Txn not yet applied>          Write
//	HSET hamal:offset:<ch> <db>/slot <n> "<epoch> <offset>" …        Write: the fences of the touched slots
//	EXEC                                                             ProveLease + Commit: EXEC aborts when
//	                                                                 the WATCHed owner key changed
//
// Begin checks the owner key names this process, under WATCH, so an EXEC
// that commits proves the lease was held at its commit point; what the
// calls add is sent at Commit, in one round trip.

var (
	_ sink.Target = (*Sink)(nil)
	_ sink.Unit   = (*unit)(nil)
)

// planned is one Txn with its decoded position and fence fields.
type planned struct {
	txn    *event.Txn
	pos    redisrepl.Position
	fields []string // nil for full-sync Txns, which are idempotent
}

// unit is one MULTI/EXEC in the making.
type unit struct {
	s      *Sink
	c      *conn // nil once handed back
	todo   []planned
	origin string // the marker's origin; "" writes none
	proved bool
}

// Class classifies an error of a unit (sink.Target): the sink's own errors
// say whether a retry may help (retry.Transient), everything else is
// fatal.
func (s *Sink) Class(err error) sink.Class {
	if retry.IsTransient(err) {
		return sink.ClassTransient
	}
	return sink.ClassFatal
}

// Begin plans the unit, takes a connection and, in one round trip, WATCHes
// the lease owner key, checks it names this process and reads the fences
// this sink does not know yet; Txns the fences show applied are dropped.
func (s *Sink) Begin(ctx context.Context, txns []*event.Txn) (sink.Unit, error) {
	if s.closed.Load() {
		return nil, errors.New("redis sink: Apply after Close")
	}
	todo := make([]planned, 0, len(txns))
	var fields []string
	var lastPos event.Position
	var p redisrepl.Position
	for _, t := range txns {
		if t.Kind == event.KindHeartbeat {
			continue
		}
		// A full sync's Txns share one position: decode it once.
		if lastPos == nil || !bytes.Equal(t.Pos, lastPos) {
			var err error
			if p, err = redisrepl.DecodePosition(t.Pos); err != nil {
				return nil, fmt.Errorf("redis sink: %w", err)
			}
			lastPos = t.Pos
		}
		pl := planned{txn: t, pos: p}
		if !p.Snapshot {
			pl.fields = fenceFields(t)
			fields = append(fields, pl.fields...)
		}
		todo = append(todo, pl)
	}
	u := &unit{s: s}
	if len(todo) == 0 {
		return u, nil
	}
	select {
	case u.c = <-s.conns:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if u.c.c == nil {
		u.c.c, u.c.db = s.client.Conn(), 0
	}
	fences, err := s.begin(ctx, u.c, fields)
	if err != nil {
		u.Abort()
		return nil, err
	}
	if len(fields) > 0 {
		kept := todo[:0]
		for _, pl := range todo {
			if !applied(pl, fences) {
				kept = append(kept, pl)
			}
		}
		todo = kept
	}
	u.todo = todo
	return u, nil
}

// Marker records the unit's origin for the marker, written only when the
// sink has a site (a reader of this target then tags the unit's writes
// with it; without sites there is no loop guard to tell).
func (u *unit) Marker(_ context.Context, m sink.Marker) error {
	if u.s.cfg.Site != "" {
		u.origin = m.Origin
	}
	return nil
}

// Write has nothing to send before Commit: the commands and the fences
// go in the MULTI/EXEC.
func (u *unit) Write(context.Context) error { return nil }

// ProveLease: the WATCH of Begin is the proof, checked by EXEC.
func (u *unit) ProveLease(context.Context) error {
	if u.s.lease == nil && len(u.todo) > 0 {
		return errors.New("redis sink: opened with SkipLease (for checks); such a sink must not apply")
	}
	u.proved = true
	return nil
}

// Commit sends MULTI, the marker, the commands, the fences and EXEC.
func (u *unit) Commit(ctx context.Context) error {
	if !u.proved {
		return errors.New("redis sink: Commit before ProveLease")
	}
	if len(u.todo) == 0 {
		u.Abort()
		return nil
	}
	err := u.s.exec(ctx, u.c, u.todo, u.origin)
	u.Abort()
	return err
}

// Abort hands the connection back; a WATCH left on it is cleared by the
// next Begin (conn.watching), and nothing was queued outside EXEC.
func (u *unit) Abort() {
	if u.c != nil {
		u.s.conns <- u.c
		u.c = nil
	}
}
