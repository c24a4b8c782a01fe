package redis

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/redisrepl"
	"github.com/hamal-replication/hamal/retry"
)

// The command stream after PSYNC: reading commands, the control commands
// the reader handles itself, and turning the rest into Txns.

func (s *Source) stream() error {
	pos := s.start
	enc := redisrepl.NewEncoder(pos.ReplID, pos.Epoch)
	if s.fullSync {
		if err := s.readRDB(pos, enc); err != nil {
			return err
		}
		pos.Snapshot = false
		// The RDB is loaded: from here a resume continues the stream.
		if !s.emit(&event.Txn{Pos: enc.Encode(pos.Offset, pos.DB), Kind: event.KindHeartbeat, CommitTime: time.Now()}, pos) ||
			!s.flush() {
			return errClosed
		}
	}
	s.acked.Store(pos.Offset)
	if err := s.ack(); err != nil {
		return s.broken(err)
	}
	s.wg.Add(1)
	go s.ackLoop()

	base := s.rd.n - pos.Offset // rd.n - base == stream offset
	db := pos.DB
	var multi *event.Txn
	var multiOrigin string
	// at is the position after the command just read.
	at := func(offset int64) Position {
		return Position{ReplID: pos.ReplID, Offset: offset, Epoch: pos.Epoch, DB: db}
	}
	for {
		args, err := s.rd.readCommand()
		if err != nil {
			select {
			case <-s.stop:
				return errClosed
			default:
			}
			if errors.Is(err, ErrTooLarge) {
				// Fatal: reconnecting would read the same command again.
				return fmt.Errorf("source redis %s at offset %d: %w", s.cfg.Addr, s.rd.n-base, err)
			}
			return s.broken(err)
		}
		offset := s.rd.n - base
		now := time.Now()
		s.acked.Store(offset)
		s.contact.Store(now.UnixNano())
		if len(args) == 0 {
			continue
		}
		switch control(args[0]) {
		case ctlSelect:
			if len(args) != 2 {
				return fmt.Errorf("%w: %q", errProtocol, args)
			}
			n, err := strconv.Atoi(string(args[1]))
			if err != nil {
				return fmt.Errorf("%w: SELECT %q", errProtocol, args[1])
			}
			db = n
			continue
		case ctlMulti:
			multi, multiOrigin = &event.Txn{Kind: event.KindDML}, ""
			continue
		case ctlExec:
			if multi == nil {
				continue
			}
			t := multi
			multi = nil
			if !s.emit(s.finish(t, multiOrigin, enc.Encode(offset, db), now), at(offset)) {
				return errClosed
			}
			continue
		case ctlPing, ctlReplconf:
			if len(args) > 1 && bytes.EqualFold(args[1], []byte("getack")) && bytes.EqualFold(args[0], []byte("replconf")) {
				if err := s.ack(); err != nil {
					return s.broken(err)
				}
			}
			if multi == nil {
				t := &event.Txn{Kind: event.KindHeartbeat}
				if !s.emit(s.finish(t, "", enc.Encode(offset, db), now), at(offset)) {
					return errClosed
				}
			}
			continue
		}
		if db < 0 {
			return fmt.Errorf("%w: command %s before any SELECT", errProtocol, args[0])
		}
		t := multi
		s.tagSlot = nil
		if t == nil {
			b := &oneCommand{}
			b.txn.Kind = event.KindDML
			b.txn.Changes = b.ch[:0:1]
			t, s.tagSlot = &b.txn, b.tag[:0:1]
		}
		origin, isMarker, err := s.addCommand(t, db, args)
		if err != nil {
			return fmt.Errorf("source redis %s at offset %d: %w", s.cfg.Addr, offset, err)
		}
		if isMarker && multi != nil {
			multiOrigin = origin
		}
		if multi == nil {
			if !s.emit(s.finish(t, "", enc.Encode(offset, db), now), at(offset)) {
				return errClosed
			}
		}
	}
}

// Stream commands the reader handles itself rather than emitting.
const (
	ctlNone = iota
	ctlSelect
	ctlMulti
	ctlExec
	ctlPing
	ctlReplconf
)

// control names the stream-control command name is, without allocating.
func control(name []byte) int {
	switch len(name) {
	case 4:
		if bytes.EqualFold(name, []byte("exec")) {
			return ctlExec
		}
		if bytes.EqualFold(name, []byte("ping")) {
			return ctlPing
		}
	case 5:
		if bytes.EqualFold(name, []byte("multi")) {
			return ctlMulti
		}
	case 6:
		if bytes.EqualFold(name, []byte("select")) {
			return ctlSelect
		}
	case 8:
		if bytes.EqualFold(name, []byte("replconf")) {
			return ctlReplconf
		}
	}
	return ctlNone
}

// addCommand appends one command to t, unless it only touches Hamal's own
// keys or the filter drops it; a loop-guard marker returns its origin. The
// filter may narrow the command to the keys it keeps, map its database, or
// refuse it (an error naming the command: the channel stops).
func (s *Source) addCommand(t *event.Txn, db int, args [][]byte) (origin string, marker bool, err error) {
	keys, ok := s.cmds.Keys(args)
	if ok && allHamal(keys) {
		if len(args) >= 3 && bytes.EqualFold(args[0], []byte("set")) && bytes.HasPrefix(args[1], []byte(OriginPrefix)) {
			return string(args[2]), true, nil
		}
		return "", false, nil
	}
	if !s.cfg.Filter.active() {
		s.appendChange(t, db, args, keys, ok)
		return "", false, nil
	}
	routes, err := s.cfg.Filter.route(db, args, keys, ok)
	if err != nil {
		return "", false, err
	}
	for _, r := range routes {
		keys, ok := s.cmds.Keys(r.args)
		s.appendChange(t, r.db, r.args, keys, ok)
	}
	return "", false, nil
}

// oneCommand is a Txn of one command with its Change and its slot tag,
// in one allocation: most of a stream is single commands on one slot.
type oneCommand struct {
	txn event.Txn
	ch  [1]event.Change
	tag [1][]byte
}

func (s *Source) appendChange(t *event.Txn, db int, args, keys [][]byte, known bool) {
	c := event.Change{Op: event.OpCommand, Namespace: strconv.Itoa(db), Args: args}
	if known {
		if len(keys) == 1 && s.tagSlot != nil {
			// The slot tag goes in the Txn's own block (oneCommand).
			c.Keys = append(s.tagSlot, redisrepl.SlotTag(keys[0]))
			s.tagSlot = nil
		} else {
			c.Keys = slotTags(keys)
		}
	} else {
		t.Kind = event.KindBarrier
	}
	t.Changes = append(t.Changes, c)
}

func allHamal(keys [][]byte) bool {
	for _, k := range keys {
		if !bytes.HasPrefix(k, []byte(MarkerPrefix)) {
			return false
		}
	}
	return true
}

// slotTags returns the distinct slot tags of keys (shared bytes).
func slotTags(keys [][]byte) [][]byte {
	if len(keys) == 1 {
		return [][]byte{redisrepl.SlotTag(keys[0])}
	}
	tags := make([][]byte, 0, len(keys))
	slots := make([]int, 0, len(keys))
	for _, k := range keys {
		if sl := redisrepl.Slot(k); !slices.Contains(slots, sl) {
			slots = append(slots, sl)
			tags = append(tags, redisrepl.TagOf(sl))
		}
	}
	return tags
}

// finish stamps position, time and origin; a Txn left without data
// becomes a heartbeat that only moves the position.
func (s *Source) finish(t *event.Txn, origin string, pos event.Position, now time.Time) *event.Txn {
	t.Pos = pos
	t.CommitTime = now
	if len(t.Changes) == 0 {
		t.Kind = event.KindHeartbeat
		t.Changes = nil
	}
	if origin == "" {
		origin = s.cfg.Site
	}
	t.Origin = origin
	return t
}

// broken marks a stream failure as transient: the engine reopens the
// source at its checkpoint.
func (s *Source) broken(err error) error {
	select {
	case <-s.stop:
		return errClosed
	default:
	}
	return retry.Transient(fmt.Errorf("replication stream from %s: %w", s.cfg.Addr, err))
}
