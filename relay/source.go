package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/source"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("relay: source closed")

// OpenSource returns the applier's view of the relay: a source.Source that
// serves the records after the one whose position is resume (the channel's
// checkpoint; nil: the first record not known applied). It has the
// signature of pipeline.Options.OpenSource. One view is open at a time: the
// channel opens the next after closing the previous.
func (r *Relay) OpenSource(ctx context.Context, resume event.Position) (source.Source, error) {
	r.mu.Lock()
	if r.ctx.Err() != nil {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if !r.readerOn {
		// The reader stopped on an error (the channel went to state error
		// and is resumed now): read again after the last record.
		r.startReaderLocked(r.read.pos)
	}
	r.mu.Unlock()
	if err := r.waitOpened(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	after := r.applied
	r.mu.Unlock()
	from := after.seq + 1
	if resume != nil && !equalPos(resume, after.pos) {
		m, found, err := r.find(resume, after.seq)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("relay: the checkpoint %s is not among the records after relay seq %d in %s; remove the relay directory to read again from the checkpoint", resume, after.seq, r.opts.Dir)
		}
		from = m.seq + 1
		// The checkpoint is the authority on what was applied: the
		// cleaner may not have seen it yet (the session ended first).
		r.mu.Lock()
		if m.seq > r.applied.seq {
			r.applied = m
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.served = r.served[:0]
	r.mu.Unlock()
	return &view{r: r, next: from, closed: make(chan struct{}), intern: &tableIntern{}}, nil
}

// waitOpened waits until the reader has opened the source once, so that a
// channel that says "running" reads from where the source stood then (a
// start at "current" is resolved), and Position is known. While the source
// cannot be opened it returns a transient error, as opening it directly
// would.
func (r *Relay) waitOpened(ctx context.Context) error {
	for {
		r.mu.Lock()
		opened, state, reason, fatal, ch := r.opened, r.state, r.reason, r.fatal, r.notify
		r.mu.Unlock()
		switch {
		case opened:
			return nil
		case fatal != nil:
			return fatal
		case state == StateSourceRetrying:
			return retry.Transient(fmt.Errorf("relay: %s", reason))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func equalPos(a, b event.Position) bool { return string(a) == string(b) }

// view reads records back for the applier. Next is called from one
// goroutine; Close from any.
type view struct {
	r      *Relay
	next   uint64 // relay seq to serve next
	rr     *recordReader
	seg    *segment
	dec    *decoder
	intern *tableIntern
	// limit and sealed are v.seg's as last seen under r.mu: records
	// before limit are published and may be read without asking again.
	limit  int64
	sealed bool

	mu        sync.Mutex // guards rr against Close
	closeOnce sync.Once
	closed    chan struct{}
}

var (
	_ source.Source                          = (*view)(nil)
	_ interface{ Position() event.Position } = (*view)(nil)
	_ interface{ LastContact() time.Time }   = (*view)(nil)
)

// Next returns the next record, waiting for the reader to write it.
func (v *view) Next(ctx context.Context) (*event.Txn, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := v.r
	for {
		select {
		case <-v.closed:
			v.release()
			return nil, ErrClosed
		default:
		}
		if v.seg != nil && v.rr != nil && v.rr.off < v.limit {
			// Published and not read yet: no need to ask r.
			txn, err := v.read()
			if err != nil || txn != nil {
				return txn, err
			}
			continue
		}
		r.mu.Lock()
		if v.seg == nil {
			for _, s := range r.segs {
				if s.last >= v.next || !s.sealed {
					v.seg = s
					break
				}
			}
		}
		v.limit, v.sealed = 0, false
		if v.seg != nil {
			v.limit, v.sealed = v.seg.size, v.seg.sealed
		}
		fatal, readerOn := r.fatal, r.readerOn
		ch := r.notify
		r.mu.Unlock()

		if v.seg != nil {
			if v.rr == nil {
				rr, err := openRecords(v.seg.path)
				if err != nil {
					return nil, fmt.Errorf("relay: read %s: %w", v.seg.path, err)
				}
				v.rr, v.dec = rr, newDecoder(v.intern)
				v.dec.v1 = rr.v1
			}
			if v.rr.off < v.limit {
				continue // newly published records
			}
			if v.sealed {
				v.rr.close()
				v.rr, v.seg = nil, nil
				continue
			}
		}
		if !readerOn && fatal != nil {
			// Everything the reader wrote was served; now its error.
			return nil, fatal
		}
		v.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		case <-v.closed:
		}
		v.mu.Lock()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// read decodes the next published record of v.seg: nil, nil for a record
// before v.next (applied before the checkpoint), skipped.
func (v *view) read() (*event.Txn, error) {
	payload, err := v.rr.next(v.limit)
	if err != nil {
		// Published bytes are whole records: anything else is damage.
		return nil, fmt.Errorf("relay: read %s at offset %d: %w", v.seg.path, v.rr.off, err)
	}
	rseq, txn, err := v.dec.decodeTxn(payload)
	if err != nil {
		return nil, fmt.Errorf("relay: %s at offset %d: %w", v.seg.path, v.rr.off, err)
	}
	if rseq < v.next {
		return nil, nil
	}
	if rseq != v.next {
		return nil, fmt.Errorf("relay: %s holds relay seq %d where %d was expected; remove the relay directory to read again from the checkpoint", v.seg.path, rseq, v.next)
	}
	v.next++
	// One r.mu per Txn: the writer takes it once per group and the source
	// reader never, so it is not contended.
	v.r.mu.Lock()
	v.r.served = append(v.r.served, mark{seq: rseq, pos: txn.Pos, commit: txn.CommitTime})
	v.r.mu.Unlock()
	return txn, nil
}

func (v *view) release() {
	if v.rr != nil {
		v.rr.close()
		v.rr = nil
	}
}

// Close ends a blocked Next; safe to call more than once.
func (v *view) Close() error {
	v.closeOnce.Do(func() {
		close(v.closed)
		v.mu.Lock()
		v.release()
		v.mu.Unlock()
	})
	return nil
}

// Position is the position before the first record the relay holds
// unapplied, when nothing was applied yet: the channel pins it as its
// first checkpoint (see pipeline.Positioner).
func (v *view) Position() event.Position {
	v.r.mu.Lock()
	defer v.r.mu.Unlock()
	return v.r.applied.pos
}

// LastContact is when the relay last heard from the source.
func (v *view) LastContact() time.Time {
	r := v.r
	r.mu.Lock()
	live := r.live
	var last time.Time
	if ns := r.contact.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
	r.mu.Unlock()
	if c, ok := live.(interface{ LastContact() time.Time }); ok {
		if t := c.LastContact(); t.After(last) {
			last = t
		}
	}
	return last
}
