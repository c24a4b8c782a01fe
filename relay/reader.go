package relay

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
)

// startReaderLocked starts a reader pair, opening the source at start: the
// reader pulls Txns from the source into a bounded channel, the writer
// appends them. A third goroutine waits for both and records how they
// ended. r.mu is held.
func (r *Relay) startReaderLocked(start event.Position) {
	if r.readerOn {
		return
	}
	r.readerOn, r.fatal, r.state, r.reason = true, nil, StateStarting, ""
	in := make(chan *event.Txn, readerQueue)
	ctx, stop := context.WithCancel(r.ctx)
	var pair sync.WaitGroup
	pair.Add(2)
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		defer pair.Done()
		defer close(in)
		if err := r.readSource(ctx, start, in); err != nil {
			r.mu.Lock()
			r.fatal = err
			r.mu.Unlock()
		}
	}()
	go func() {
		defer r.wg.Done()
		defer pair.Done()
		if err := r.writeLoop(ctx, in); err != nil {
			r.mu.Lock()
			r.fatal = err
			r.mu.Unlock()
			stop() // the source side stops too
			for range in {
			}
			r.abandon()
		}
	}()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		pair.Wait()
		stop()
		r.mu.Lock()
		r.readerOn = false
		if r.fatal != nil {
			r.state, r.reason = StateError, r.fatal.Error()
			r.log.Error("relay reader stopped", "err", r.fatal)
		} else {
			r.state, r.reason = StateStopped, ""
		}
		r.broadcastLocked()
		r.mu.Unlock()
	}()
}

// readSource pulls Txns from the source into in, reconnecting at the last
// Txn read after a transient error. It returns nil when ctx is done.
func (r *Relay) readSource(ctx context.Context, pos event.Position, in chan<- *event.Txn) error {
	var backoff retry.Backoff
	first := true
	for {
		src, err := r.opts.Open(ctx, pos)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !retry.IsTransient(err) {
				return fmt.Errorf("relay: open source at %s: %w", pos, err)
			}
			r.setReaderState(StateSourceRetrying, fmt.Sprintf("open source: %v", err))
			if backoff.Sleep(ctx) != nil {
				return nil
			}
			continue
		}
		if first && pos == nil {
			// A fresh relay pins where reading began, so that the applier's
			// first checkpoint can name it (see Source.Position).
			if p, ok := src.(interface{ Position() event.Position }); ok {
				r.mu.Lock()
				if r.applied.pos == nil && r.read.seq == r.applied.seq {
					r.applied.pos = p.Position()
					r.read.pos = p.Position()
				}
				r.mu.Unlock()
			}
		}
		first = false
		r.mu.Lock()
		r.live, r.opened = src, true
		r.broadcastLocked()
		r.mu.Unlock()
		r.setReaderState(StateReading, "")
		for {
			txn, err := src.Next(ctx)
			if err != nil {
				src.Close()
				r.mu.Lock()
				r.live = nil
				r.mu.Unlock()
				if ctx.Err() != nil {
					return nil
				}
				if !retry.IsTransient(err) {
					return fmt.Errorf("relay: source at %s: %w", pos, err)
				}
				r.setReaderState(StateSourceRetrying, err.Error())
				r.log.Warn("relay: source stream broken; reconnecting at the last transaction read", "position", pos.String(), "err", err)
				if backoff.Sleep(ctx) != nil {
					return nil
				}
				break
			}
			backoff.Reset()
			pos = txn.Pos
			r.contact.Store(time.Now().UnixNano())
			select {
			case in <- txn:
			case <-ctx.Done():
				src.Close()
				return nil
			}
		}
	}
}

func (r *Relay) setReaderState(state State, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full && state == StateReading {
		return // the writer's "relay full" says more
	}
	r.state, r.reason = state, reason
	r.broadcastLocked()
}
