package checkpoint

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// Tracker errors. They report a caller bug (a seq issued twice, a Txn done
// twice); the channel should stop rather than retry.
var (
	// ErrNotDense is returned by Issue when a seq is not the last issued + 1.
	ErrNotDense = errors.New("seq not dense")
	// ErrUnknownSeq is returned by Done for a seq that was never issued.
	ErrUnknownSeq = errors.New("unknown seq")
	// ErrAlreadyDone is returned by Done for a seq that is already done.
	ErrAlreadyDone = errors.New("seq already done")
)

// Mark is what a checkpoint names: the position after Txn Seq.
type Mark struct {
	Seq        uint64
	Pos        event.Position
	CommitTime time.Time
}

// pendingEntry is one issued Txn at or above the watermark's successor.
type pendingEntry struct {
	mark Mark
	done bool
}

// minRingSize is the smallest ring the Tracker allocates or shrinks to.
const minRingSize = 64

// Tracker turns out-of-order Done(seq) calls into a low watermark: the
// highest seq W such that every issued seq <= W is done.
//
// Issued Txns that are above the watermark sit in a ring, oldest first. The
// ring's first entry is always not done (the done prefix is popped as soon as
// it forms), so Watermark and Pending are O(1), and Issue and Done are O(1)
// amortised. The ring holds only in-flight Txns and shrinks when they drain,
// so memory is bounded by the in-flight count.
//
// All methods may be called concurrently.
type Tracker struct {
	mu sync.Mutex

	// ring holds the entries for seqs lowWatermark+1 .. lastIssued, starting at
	// ring[head] and wrapping around. len(ring) is a power of two.
	ring  []pendingEntry
	head  int
	count int
	// undone counts the entries in ring that are not done.
	undone int

	lowWatermark    Mark // valid when hasWatermark
	hasWatermark    bool
	lowWatermarkSeq uint64 // seq of lowWatermark, or start
	lastIssued      Mark   // valid when hasIssued
	hasIssued       bool
	lastIssuedSeq   uint64 // seq of lastIssued, or start

	// drained, when not nil, is closed by the Done that leaves no issued
	// Txn pending (see Drained).
	drained chan struct{}
}

// NewTracker returns a Tracker whose first Issue must be start+1. start is
// the seq of the last already-checkpointed Txn, 0 when there is none.
func NewTracker(start uint64) *Tracker {
	return &Tracker{
		ring:            make([]pendingEntry, minRingSize),
		lowWatermarkSeq: start,
		lastIssuedSeq:   start,
	}
}

// Issue records a Txn handed to the DAG. Seqs must be issued densely, in
// order: m.Seq must be the last issued seq + 1 (start + 1 for the first),
// else Issue returns an error wrapping ErrNotDense and records nothing.
// The Tracker keeps m.Pos; the caller must not modify it afterwards.
// It is called by the one goroutine that reads the source.
func (t *Tracker) Issue(m Mark) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m.Seq != t.lastIssuedSeq+1 {
		return fmt.Errorf("issue seq %d after %d: %w", m.Seq, t.lastIssuedSeq, ErrNotDense)
	}
	if t.count == len(t.ring) {
		t.resize(2 * len(t.ring))
	}
	t.ring[(t.head+t.count)&(len(t.ring)-1)] = pendingEntry{mark: m}
	t.count++
	t.undone++
	t.lastIssued, t.hasIssued, t.lastIssuedSeq = m, true, m.Seq
	return nil
}

// Done marks seq applied. Txns may be done in any order, from any goroutine.
// It returns an error wrapping ErrUnknownSeq for a seq not issued yet, and
// ErrAlreadyDone for a seq done before; the Tracker is unchanged then.
func (t *Tracker) Done(seq uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case seq > t.lastIssuedSeq:
		return fmt.Errorf("done seq %d, last issued %d: %w", seq, t.lastIssuedSeq, ErrUnknownSeq)
	case seq <= t.lowWatermarkSeq:
		return fmt.Errorf("done seq %d, watermark %d: %w", seq, t.lowWatermarkSeq, ErrAlreadyDone)
	}
	offset := int(seq - t.lowWatermarkSeq - 1) // < count, since seq <= lastIssuedSeq
	mask := len(t.ring) - 1
	entry := &t.ring[(t.head+offset)&mask]
	if entry.done {
		return fmt.Errorf("done seq %d: %w", seq, ErrAlreadyDone)
	}
	entry.done = true
	t.undone--
	if t.undone == 0 && t.drained != nil {
		close(t.drained)
		t.drained = nil
	}
	if offset != 0 {
		return nil
	}
	// The oldest pending Txn is done: pop the done prefix.
	for t.count > 0 && t.ring[t.head].done {
		t.lowWatermark = t.ring[t.head].mark
		t.ring[t.head] = pendingEntry{} // drop the Pos reference
		t.head = (t.head + 1) & mask
		t.count--
	}
	t.hasWatermark = true
	t.lowWatermarkSeq = t.lowWatermark.Seq
	if len(t.ring) > minRingSize && t.count < len(t.ring)/4 {
		t.resize(len(t.ring) / 2)
	}
	return nil
}

// resize moves the pending entries into a ring of the given size, which is a
// power of two no smaller than count.
func (t *Tracker) resize(size int) {
	ring := make([]pendingEntry, size)
	mask := len(t.ring) - 1
	for i := 0; i < t.count; i++ {
		ring[i] = t.ring[(t.head+i)&mask]
	}
	t.ring, t.head = ring, 0
}

// Watermark returns the Mark of the highest seq W such that every issued seq
// <= W is done. ok is false when no seq beyond start is done yet.
func (t *Tracker) Watermark() (m Mark, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lowWatermark, t.hasWatermark
}

// Pending returns how many issued Txns are not done, and the CommitTime of
// the oldest of them; ok is false when every issued Txn is done.
func (t *Tracker) Pending() (n int, oldest time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.count == 0 {
		return 0, time.Time{}, false
	}
	// The first entry of the ring is never done: done prefixes are popped.
	return t.undone, t.ring[t.head].mark.CommitTime, true
}

// Drained returns a channel that is closed once no issued Txn is pending:
// already closed when none is, else closed by the Done of the last pending
// one. Txns issued after the call and before that moment are waited for
// too, so a caller that stopped issuing waits exactly for what it issued.
// It is how a channel waits for its in-flight Txns (drain at shutdown,
// before reopening a source) without polling Pending. Safe from any
// goroutine; callers may share the channel.
func (t *Tracker) Drained() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.undone == 0 {
		closed := make(chan struct{})
		close(closed)
		return closed
	}
	if t.drained == nil {
		t.drained = make(chan struct{})
	}
	return t.drained
}

// Issued returns the last issued Mark: how far the source has been read.
// ok is false before the first Issue.
func (t *Tracker) Issued() (m Mark, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastIssued, t.hasIssued
}
