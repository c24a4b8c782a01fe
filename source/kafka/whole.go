package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/hamal-replication/hamal/event"
)

// Transaction modes (Config.Transactions).
const (
	TransactionsEach  = "each"
	TransactionsWhole = "whole"
	// DefaultTransactionBuffer is how many messages of incomplete source
	// transactions the whole mode holds at most.
	DefaultTransactionBuffer = 10000
)

// ErrTransactionIncomplete marks a source transaction that cannot be
// completed within the buffer: fatal, since applying part of it is what
// the whole mode promises not to do.
var ErrTransactionIncomplete = errors.New("source transaction cannot complete")

// Whole transactions. Every message names its source transaction (an id,
// its order in it, and on the last one the total: the hamal envelope's
// source.position/index/total, Debezium's transaction block, the _hamal
// block of Canal and Maxwell messages Hamal writes, or Maxwell's xid and
// commit flag). The assembler holds the messages of each transaction
// until all of them arrived, from whatever partitions, and then returns
// the transaction as one Txn, its changes in transaction order, so the
// target applies it atomically.
//
// Order: a complete transaction is returned only when no incomplete one
// holds an earlier message in a partition it has messages in, so a
// key's changes (one partition) keep their order. Position: a returned
// Txn's position never passes the first held message of any partition,
// so a restart reads the held transactions again.
type assembler struct {
	limit    int
	buffered int
	next     uint64
	pending  map[string]*pendingTxn
	ready    []*event.Txn
}

type pendingTxn struct {
	id    string
	seq   uint64
	msgs  []message
	first map[topicPartition]int64
	total int
	last  bool
}

func newAssembler(limit int) *assembler {
	return &assembler{limit: limit, pending: map[string]*pendingTxn{}}
}

func (p *pendingTxn) complete() bool {
	return p.last && (p.total == 0 || len(p.msgs) >= p.total)
}

// nextWhole returns the next complete source transaction.
func (s *Source) nextWhole(ctx context.Context) (*event.Txn, error) {
	a := s.whole
	for {
		if len(a.ready) > 0 {
			t := a.ready[0]
			a.ready = a.ready[1:]
			s.setPos(t.Pos)
			return t, nil
		}
		m, err := s.read(ctx)
		if err != nil {
			return nil, err
		}
		if m.noTxn {
			if len(a.pending) == 0 {
				pos := encodePosition(s.offsets)
				s.setPos(pos)
				return &event.Txn{Pos: pos, Kind: event.KindHeartbeat}, nil
			}
			continue
		}
		id := m.src.Position
		if id == "" {
			return nil, fmt.Errorf("message %s@%d: %w: source.kafka.transactions: whole needs the transaction of every message (the hamal envelope's source.position, Debezium's transaction block, Hamal's _hamal block, Maxwell's xid), and this one names none; set source.kafka.transactions: each",
				m.tp, m.offset, ErrTransactionIncomplete)
		}
		p := a.pending[id]
		if p == nil {
			p = &pendingTxn{id: id, seq: a.next, first: map[topicPartition]int64{}}
			a.next++
			a.pending[id] = p
		}
		p.msgs = append(p.msgs, m)
		if _, ok := p.first[m.tp]; !ok {
			p.first[m.tp] = m.offset
		}
		if m.src.Total > 0 {
			p.total = m.src.Total
		}
		p.last = p.last || m.src.Last
		a.buffered++
		if a.buffered > a.limit {
			return nil, a.overflow()
		}
		a.flush(s.offsets)
	}
}

// overflow is the error of a full buffer, naming the oldest incomplete
// transaction.
func (a *assembler) overflow() error {
	var oldest *pendingTxn
	for _, p := range a.pending {
		if !p.complete() && (oldest == nil || p.seq < oldest.seq) {
			oldest = p
		}
	}
	what := "a transaction"
	if oldest != nil {
		total := "unknown"
		if oldest.total > 0 {
			total = fmt.Sprint(oldest.total)
		}
		what = fmt.Sprintf("transaction %s (%d of %s messages, first at %s@%d)", oldest.id, len(oldest.msgs), total, oldest.msgs[0].tp, oldest.msgs[0].offset)
	}
	return fmt.Errorf("%w: %d messages held for incomplete transactions, more than source.kafka.transaction_buffer (%d); %s has not completed: its other messages are in a topic this channel does not read, were deleted, or it is larger: raise source.kafka.transaction_buffer, add the topics, or set source.kafka.transactions: each",
		ErrTransactionIncomplete, a.buffered, a.limit, what)
}

// flush moves every complete transaction that nothing earlier holds back
// to the ready queue.
func (a *assembler) flush(offsets map[topicPartition]int64) {
	for {
		var done []*pendingTxn
		for _, p := range a.pending {
			if p.complete() && !a.blocked(p) {
				done = append(done, p)
			}
		}
		if len(done) == 0 {
			return
		}
		sort.Slice(done, func(i, j int) bool { return done[i].seq < done[j].seq })
		for _, p := range done {
			delete(a.pending, p.id)
			a.buffered -= len(p.msgs)
			a.ready = append(a.ready, a.txn(p, offsets))
		}
	}
}

// blocked reports whether another held transaction has an earlier
// message in one of p's partitions.
func (a *assembler) blocked(p *pendingTxn) bool {
	for _, q := range a.pending {
		if q == p {
			continue
		}
		for tp, off := range p.first {
			if qo, ok := q.first[tp]; ok && qo < off {
				return true
			}
		}
	}
	return false
}

// txn is p as one Txn at the position after it that no held message
// precedes.
func (a *assembler) txn(p *pendingTxn, offsets map[topicPartition]int64) *event.Txn {
	pos := make(map[topicPartition]int64, len(offsets))
	for tp, o := range offsets {
		pos[tp] = o
	}
	for _, q := range a.pending {
		for tp, off := range q.first {
			if off < pos[tp] {
				pos[tp] = off
			}
		}
	}
	msgs := append([]message(nil), p.msgs...)
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].src.Index < msgs[j].src.Index })
	t := &event.Txn{Pos: encodePosition(pos), Kind: event.KindHeartbeat, CommitTime: msgs[0].src.CommitTime(),
		Origin: msgs[0].origin, Path: msgs[0].path}
	for _, m := range msgs {
		if m.change != nil {
			t.Changes = append(t.Changes, *m.change)
		}
	}
	if len(t.Changes) > 0 {
		t.Kind = event.KindDML
	}
	return t
}
