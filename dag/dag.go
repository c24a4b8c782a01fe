package dag

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Item is anything the scheduler can order.
//
// The methods are called once, by Add, outside the scheduler's lock. The
// scheduler keeps the slice returned by ConflictKeys until the item is Done;
// the caller must not modify it in the meantime.
type Item interface {
	// ConflictKeys returns the item's conflict-key hashes. Two items sharing
	// any key are applied in seq order. Duplicates are allowed.
	ConflictKeys() []uint64
	// IsBarrier reports whether the item waits for every item before it, and
	// every item after it waits for it. The keys of a barrier are ignored.
	IsBarrier() bool
	// SizeBytes is the item's share of the byte window. Negative counts as 0.
	SizeBytes() int
}

// Options configures a Scheduler. Zero fields take their defaults.
type Options struct {
	// MaxTxns is the maximum number of items admitted and not yet Done.
	// Default 10000.
	MaxTxns int
	// MaxBytes is the maximum sum of SizeBytes of the items admitted and not
	// yet Done. Default 64 MiB. A single item larger than MaxBytes is still
	// admitted when the window is empty, so the reader never deadlocks.
	MaxBytes int64
	// Chain lets NextBatch hand out, in the same batch, items that depend
	// only on items of that batch: the chain of updates to one hot row
	// then goes out as one batch instead of one batch per update. The
	// consumer must apply a batch in its (seq) order, as one unit, which a
	// sink that commits a batch as one target transaction does. Without
	// Chain the items of a batch are pairwise independent.
	Chain bool
	// Linger lets NextBatch wait up to this long for a full batch (maxItems
	// ready, or maxBytes of them) while batches handed out earlier are
	// still running, instead of handing out the few items ready at once.
	// When nothing runs it does not wait, so an idle consumer gets each
	// item as soon as it is ready; under load, when the consumer is busy
	// with other batches anyway, it trades up to Linger of latency for
	// fewer, larger batches. Zero: never wait.
	Linger time.Duration
}

const (
	defaultMaxTxns  = 10000
	defaultMaxBytes = 64 << 20
)

var (
	// ErrClosed is returned by Add and NextBatch once Close has been called.
	ErrClosed = errors.New("dag: closed")
	// ErrSeqOrder is returned by Add when seq is not greater than the seq of
	// the previously admitted item.
	ErrSeqOrder = errors.New("dag: seq not strictly increasing")
	// ErrUnknownSeq is returned by Done for a seq that was never admitted or
	// is already Done.
	ErrUnknownSeq = errors.New("dag: unknown seq")
	// ErrNotHandedOut is returned by Done for an admitted seq that has not
	// been handed out by NextBatch yet.
	ErrNotHandedOut = errors.New("dag: seq not handed out")
)

// Entry is one item handed out by NextBatch, with the seq it was added with.
type Entry[T Item] struct {
	Seq  uint64
	Item T
}

// Stats is a snapshot of the scheduler's occupancy.
type Stats struct {
	InFlight int   // admitted and not yet Done
	Ready    int   // ready and not yet handed out
	Bytes    int64 // sum of SizeBytes of the in-flight items
}

type nodeState uint8

const (
	stateWaiting nodeState = iota + 1 // has pending predecessors
	stateReady                        // in the ready heap
	stateRunning                      // handed out, not Done
	stateDone                         // reported Done before its predecessors finished (Options.Chain)
)

// node is the scheduler's record of one in-flight item.
type node[T Item] struct {
	seq     uint64
	item    T
	keys    []uint64 // nil for barriers
	size    int64
	barrier bool
	state   nodeState
	// pendingPreds counts predecessors not yet Done; the node is ready when
	// it drops to zero. An edge is counted once per append to a
	// predecessor's dependents, so duplicate edges are harmless.
	pendingPreds int
	dependents   []*node[T]
	// segment is the barrier-delimited segment the item was admitted in;
	// nil for barriers.
	segment *segment[T]
	// batch and inBatch count, during one NextBatch call (Options.Chain),
	// how many of the node's pending predecessor edges come from items of
	// that batch: when all do, the node may join it.
	batch   uint64
	inBatch int
}

// segment holds the non-barrier items admitted between two barriers. The
// barrier that closes it waits for its pending count to reach zero, which
// avoids one edge per item into every barrier.
type segment[T Item] struct {
	pending int
	closer  *node[T] // the barrier admitted right after the segment, if any
}

// Scheduler orders items by conflict keys and barriers. See the package
// documentation for its contract.
type Scheduler[T Item] struct {
	maxTxns  int
	maxBytes int64
	chain    bool
	linger   time.Duration

	mu        sync.Mutex
	roomCond  sync.Cond // signalled when the window shrinks or on Close
	readyCond sync.Cond // signalled when an item becomes ready or on Close
	// fillCond wakes the consumers waiting for a fuller batch
	// (Options.Linger): when the ready items fill a batch, when nothing
	// runs any more, when a wait expires, and on Close.
	fillCond sync.Cond

	closed  bool
	haveSeq bool
	lastSeq uint64

	inFlight int
	bytes    int64
	// running counts the items handed out and not yet reported Done;
	// readyBytes sums the sizes of the ready ones (Options.Linger).
	running    int
	readyBytes int64
	// lingering counts the consumers in waitForFill, which wait for
	// fillItems ready items or fillBytes of them.
	lingering int
	fillItems int
	fillBytes int64

	nodes       map[uint64]*node[T] // in-flight items by seq
	lastByKey   map[uint64]*node[T] // latest pending item per key
	lastBarrier *node[T]            // latest pending barrier
	segment     *segment[T]         // segment items are admitted into now
	ready       readyHeap[T]
	batches     uint64     // NextBatch calls, numbering node.batch
	chained     []*node[T] // scratch of NextBatch: items that may join the batch
	free        []*node[T] // recycled nodes, at most the peak window size
}

// New returns a Scheduler with the given window.
func New[T Item](opts Options) *Scheduler[T] {
	if opts.MaxTxns <= 0 {
		opts.MaxTxns = defaultMaxTxns
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	s := &Scheduler[T]{
		maxTxns:   opts.MaxTxns,
		maxBytes:  opts.MaxBytes,
		chain:     opts.Chain,
		linger:    opts.Linger,
		nodes:     make(map[uint64]*node[T]),
		lastByKey: make(map[uint64]*node[T]),
		segment:   &segment[T]{},
	}
	s.roomCond.L = &s.mu
	s.readyCond.L = &s.mu
	s.fillCond.L = &s.mu
	return s
}

// Add admits item with the given seq. Seqs must be strictly increasing
// across calls; otherwise Add returns an error wrapping ErrSeqOrder.
//
// Add blocks while the window is full, until room frees, ctx is done (it
// returns ctx.Err()) or the scheduler is closed (ErrClosed). On error the
// item is not admitted. Add must be called from one goroutine at a time.
func (s *Scheduler[T]) Add(ctx context.Context, seq uint64, item T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	barrier := item.IsBarrier()
	var keys []uint64
	if !barrier {
		keys = item.ConflictKeys()
	}
	size := int64(max(item.SizeBytes(), 0))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.haveSeq && seq <= s.lastSeq {
		return fmt.Errorf("add seq %d after seq %d: %w", seq, s.lastSeq, ErrSeqOrder)
	}
	if err := s.waitForRoom(ctx, size); err != nil {
		return err
	}
	s.haveSeq, s.lastSeq = true, seq

	n := s.newNode()
	n.seq, n.item, n.keys, n.size, n.barrier = seq, item, keys, size, barrier
	s.nodes[seq] = n
	s.inFlight++
	s.bytes += size

	if barrier {
		// Everything admitted before the barrier is either in the current
		// segment or, transitively, behind the previous barrier.
		n.pendingPreds = s.segment.pending
		s.segment.closer = n
		s.segment = &segment[T]{}
	} else {
		for _, k := range keys {
			if prev, ok := s.lastByKey[k]; ok {
				if prev == n { // duplicate key within the item
					continue
				}
				prev.dependents = append(prev.dependents, n)
				n.pendingPreds++
			}
			s.lastByKey[k] = n
		}
		n.segment = s.segment
		s.segment.pending++
	}
	if prev := s.lastBarrier; prev != nil {
		prev.dependents = append(prev.dependents, n)
		n.pendingPreds++
	}
	if barrier {
		s.lastBarrier = n
	}

	if n.pendingPreds == 0 {
		s.makeReady(n)
	} else {
		n.state = stateWaiting
	}
	return nil
}

// hasRoom reports whether an item of size bytes fits the window. An empty
// window always has room, whatever the size.
func (s *Scheduler[T]) hasRoom(size int64) bool {
	return s.inFlight == 0 || (s.inFlight < s.maxTxns && s.bytes+size <= s.maxBytes)
}

// waitForRoom blocks, with s.mu held, until an item of size bytes fits.
func (s *Scheduler[T]) waitForRoom(ctx context.Context, size int64) error {
	if s.hasRoom(size) {
		return nil
	}
	stop := s.wakeOnDone(ctx, &s.roomCond)
	defer stop()
	for !s.hasRoom(size) {
		if s.closed {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		s.roomCond.Wait()
	}
	return nil
}

// wakeOnDone broadcasts cond when ctx is done, so a goroutine waiting on it
// can notice the cancellation. The broadcast takes s.mu, so it cannot slip in
// between a waiter's ctx check and its Wait.
func (s *Scheduler[T]) wakeOnDone(ctx context.Context, cond *sync.Cond) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, func() {
		s.mu.Lock()
		cond.Broadcast()
		s.mu.Unlock()
	})
}

// Done marks the item with the given seq applied: it frees the item's window
// share and releases the dependents that have no other pending predecessor.
// Done may be called from any goroutine, also after Close.
//
// An item that joined its predecessors' batch (Options.Chain) may be
// reported Done before them; it then takes effect when they are Done, so
// a key is never free while an earlier item holding it is pending.
//
// Done of a seq that is not in flight returns an error wrapping
// ErrUnknownSeq; Done of a seq not yet handed out by NextBatch returns an
// error wrapping ErrNotHandedOut. Neither changes any state.
func (s *Scheduler[T]) Done(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[seq]
	if !ok || n.state == stateDone {
		return fmt.Errorf("done seq %d: %w", seq, ErrUnknownSeq)
	}
	if n.state != stateRunning {
		return fmt.Errorf("done seq %d: %w", seq, ErrNotHandedOut)
	}
	s.running--
	if s.running == 0 && s.lingering > 0 {
		// Consumers waiting for a fuller batch stop waiting when nothing
		// else runs.
		s.fillCond.Broadcast()
	}
	if n.pendingPreds > 0 {
		n.state = stateDone // finished by its last predecessor's release
		return nil
	}
	s.finish(n)
	return nil
}

// finish drops a Done item whose predecessors are all finished.
func (s *Scheduler[T]) finish(n *node[T]) {
	delete(s.nodes, n.seq)
	s.inFlight--
	s.bytes -= n.size
	for _, k := range n.keys {
		if s.lastByKey[k] == n {
			delete(s.lastByKey, k)
		}
	}
	if s.lastBarrier == n {
		s.lastBarrier = nil
	}
	if seg := n.segment; seg != nil {
		seg.pending--
		if seg.closer != nil {
			s.release(seg.closer)
		}
	}
	for _, d := range n.dependents {
		s.release(d)
	}
	s.recycle(n)
	s.roomCond.Signal()
}

// release drops one pending predecessor of n. At zero a waiting n becomes
// ready, and an n already reported Done (it joined its predecessors'
// batch) is finished.
func (s *Scheduler[T]) release(n *node[T]) {
	n.pendingPreds--
	if n.pendingPreds != 0 {
		return
	}
	switch n.state {
	case stateWaiting:
		s.makeReady(n)
	case stateDone:
		s.finish(n)
	}
}

func (s *Scheduler[T]) makeReady(n *node[T]) {
	n.state = stateReady
	s.ready.push(n)
	s.readyBytes += n.size
	s.readyCond.Signal()
	s.signalFilled()
}

func (s *Scheduler[T]) newNode() *node[T] {
	if last := len(s.free) - 1; last >= 0 {
		n := s.free[last]
		s.free[last] = nil
		s.free = s.free[:last]
		return n
	}
	return &node[T]{}
}

// recycle clears n, keeping its dependents' capacity, and puts it on the
// free list. No live structure refers to n any more: its predecessors were
// Done before it became ready, and the per-key index, lastBarrier and its
// segment were cleared above.
func (s *Scheduler[T]) recycle(n *node[T]) {
	clear(n.dependents)
	*n = node[T]{dependents: n.dependents[:0]}
	s.free = append(s.free, n)
}

// Close wakes every blocked Add and NextBatch with ErrClosed; later calls to
// them return ErrClosed too. Done and Stats keep working. Close is
// idempotent.
func (s *Scheduler[T]) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.roomCond.Broadcast()
	s.readyCond.Broadcast()
	s.fillCond.Broadcast()
}

// Stats returns a snapshot of the scheduler's occupancy.
func (s *Scheduler[T]) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{InFlight: s.inFlight, Ready: len(s.ready), Bytes: s.bytes}
}
