package dag

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// This file hands out work: NextBatch, the chains and lingering that
// shape a batch, and the ready heap it pops from.

// NextBatch blocks until at least one item is ready, then hands out up to
// maxItems ready items, oldest seq first, whose SizeBytes sum stays within
// maxBytes. The first item is always returned, even if it alone exceeds
// maxBytes. maxItems < 1 counts as 1; maxBytes <= 0 means no byte limit.
//
// The items of one batch are in seq order. They are pairwise independent,
// except with Options.Chain, where an item whose every pending predecessor
// is in the batch may join it right after them (so a key's chain of items
// can go out together). A barrier is always returned alone. Each returned
// item must eventually be reported with Done.
//
// NextBatch may be called by many goroutines at once. It returns ctx.Err()
// when ctx is done and ErrClosed once the scheduler is closed, even if items
// are ready.
func (s *Scheduler[T]) NextBatch(ctx context.Context, maxItems int, maxBytes int) ([]Entry[T], error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	maxItems = max(maxItems, 1)
	byteLimit := int64(maxBytes)
	if byteLimit <= 0 {
		byteLimit = -1
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for {
		if err = s.waitForReady(ctx); err == nil {
			err = s.waitForFill(ctx, maxItems, byteLimit)
		}
		// Another consumer may have taken the ready items while this one
		// waited for a fuller batch: then wait for some again.
		if err != nil || len(s.ready) > 0 {
			break
		}
	}
	if err != nil {
		// We may have consumed a wake-up meant for an item still queued;
		// pass it on.
		if len(s.ready) > 0 {
			s.readyCond.Signal()
		}
		return nil, err
	}

	batch := make([]Entry[T], 0, min(maxItems, len(s.ready)))
	var bytes int64
	s.batches++
	chained := s.chained[:0]
	joined := false
	for len(batch) < maxItems {
		// A chained item goes first, so a key's chain stays together.
		var n *node[T]
		fromChain := len(chained) > 0
		if fromChain {
			n = chained[len(chained)-1]
		} else if len(s.ready) > 0 {
			n = s.ready[0]
		} else {
			break
		}
		if len(batch) > 0 && (n.barrier || (byteLimit >= 0 && bytes+n.size > byteLimit)) {
			if fromChain { // it stays waiting for its predecessors' Done
				chained = chained[:len(chained)-1]
				continue
			}
			break
		}
		if fromChain {
			chained = chained[:len(chained)-1]
			joined = true
		} else {
			s.ready.pop()
			s.readyBytes -= n.size
		}
		n.state = stateRunning
		s.running++
		batch = append(batch, Entry[T]{Seq: n.seq, Item: n.item})
		bytes += n.size
		if n.barrier {
			// Unreachable with other items ready, since a ready barrier is
			// the only pending item; kept so the contract holds by
			// construction here too.
			break
		}
		if s.chain {
			chained = s.joinable(n, chained)
		}
	}
	clear(chained)
	s.chained = chained[:0]
	if joined {
		slices.SortFunc(batch, func(a, b Entry[T]) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	if len(s.ready) > 0 {
		s.readyCond.Signal()
		s.signalFilled()
	}
	return batch, nil
}

// joinable appends to out the dependents of n, just put in the current
// batch, whose every pending predecessor is now in that batch. Barriers
// never join: they run alone.
func (s *Scheduler[T]) joinable(n *node[T], out []*node[T]) []*node[T] {
	for _, d := range n.dependents {
		if d.barrier || d.state != stateWaiting {
			continue
		}
		if d.batch != s.batches {
			d.batch, d.inBatch = s.batches, 0
		}
		d.inBatch++ // once per edge, as pendingPreds counts them
		if d.inBatch == d.pendingPreds {
			out = append(out, d)
		}
	}
	return out
}

// waitForFill implements Options.Linger: with s.mu held and an item
// ready, it waits while earlier batches are running, until a full batch
// is ready or Linger has passed.
func (s *Scheduler[T]) waitForFill(ctx context.Context, maxItems int, byteLimit int64) error {
	if s.linger <= 0 || s.running == 0 || s.filled(maxItems, byteLimit) {
		return nil
	}
	expired := false
	timer := time.AfterFunc(s.linger, func() {
		s.mu.Lock()
		expired = true
		s.fillCond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	stop := s.wakeOnDone(ctx, &s.fillCond)
	defer stop()
	s.lingering++
	s.fillItems, s.fillBytes = maxItems, byteLimit
	defer func() { s.lingering-- }()
	for !expired && s.running > 0 && !s.filled(maxItems, byteLimit) {
		if s.closed {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		s.fillCond.Wait()
	}
	if s.closed {
		return ErrClosed
	}
	return ctx.Err()
}

// filled reports whether the ready items make a full batch.
func (s *Scheduler[T]) filled(maxItems int, byteLimit int64) bool {
	return len(s.ready) >= maxItems || (byteLimit >= 0 && s.readyBytes >= byteLimit)
}

// signalFilled wakes a consumer waiting for a fuller batch once the ready
// items fill one. Waking only then, not per ready item, keeps the waiting
// consumers asleep while a batch gathers.
func (s *Scheduler[T]) signalFilled() {
	if s.lingering > 0 && s.filled(s.fillItems, s.fillBytes) {
		s.fillCond.Signal()
	}
}

// waitForReady blocks, with s.mu held, until an item is ready.
func (s *Scheduler[T]) waitForReady(ctx context.Context) error {
	if s.closed {
		return ErrClosed
	}
	if len(s.ready) > 0 {
		return nil
	}
	stop := s.wakeOnDone(ctx, &s.readyCond)
	defer stop()
	for len(s.ready) == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.readyCond.Wait()
		if s.closed {
			return ErrClosed
		}
	}
	return nil
}

// readyHeap is a min-heap of ready nodes by seq. It is hand-rolled rather
// than container/heap to avoid interface calls on the hot path.
type readyHeap[T Item] []*node[T]

func (h *readyHeap[T]) push(n *node[T]) {
	*h = append(*h, n)
	q := *h
	i := len(q) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if q[parent].seq <= q[i].seq {
			break
		}
		q[parent], q[i] = q[i], q[parent]
		i = parent
	}
}

func (h *readyHeap[T]) pop() *node[T] {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q[last] = nil
	q = q[:last]
	*h = q
	i := 0
	for {
		left := 2*i + 1
		if left >= len(q) {
			break
		}
		child := left
		if right := left + 1; right < len(q) && q[right].seq < q[left].seq {
			child = right
		}
		if q[i].seq <= q[child].seq {
			break
		}
		q[i], q[child] = q[child], q[i]
		i = child
	}
	return top
}
