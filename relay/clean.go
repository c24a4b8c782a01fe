package relay

import (
	"bytes"
	"errors"
	"os"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
)

// clean is the cleaner's tick (every Poll): it follows the applier's
// checkpoint, marks what was applied, deletes segments wholly applied,
// asks the writer to seal an applied active segment when the relay is full
// or the segment is older than MaxAge (the writer deletes it then), and
// saves the relay's positions.
func (r *Relay) clean() error {
	cp, ok, err := r.opts.Store.Load(r.opts.Channel)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if ok && cp.Pos != nil && !bytes.Equal(cp.Pos, r.applied.pos) {
		for i, m := range r.served {
			if bytes.Equal(m.pos, cp.Pos) {
				r.applied = m
				r.served = append(r.served[:0], r.served[i+1:]...)
				r.broadcastLocked()
				break
			}
		}
	}
	if n := len(r.segs); n > 0 {
		a := r.segs[n-1]
		applied := !a.sealed && !a.empty() && a.last <= r.applied.seq
		if applied && (r.full || time.Since(a.created) >= r.opts.MaxAge) {
			select {
			case r.sealReq <- struct{}{}:
			default: // asked already
			}
		}
	}
	if r.deleteAppliedLocked() > 0 {
		r.broadcastLocked()
	}
	r.mu.Unlock()
	return r.savePositions(false)
}

// deleteAppliedLocked removes sealed segments whose every record was
// applied. r.mu is held.
func (r *Relay) deleteAppliedLocked() int {
	n := 0
	for len(r.segs) > 0 {
		s := r.segs[0]
		if !s.sealed || s.last > r.applied.seq {
			break
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("relay: cannot delete an applied segment", "segment", s.path, "err", err)
			break
		}
		r.bytes -= s.size
		r.segs = r.segs[1:]
		n++
	}
	return n
}

// savePositions stores the relay's two positions when they moved.
func (r *Relay) savePositions(force bool) error {
	r.mu.Lock()
	p := checkpoint.RelayPositions{
		Read:    checkpoint.RelayMark{Seq: r.read.seq, Pos: r.read.pos, CommitTime: r.read.commit},
		Applied: checkpoint.RelayMark{Seq: r.applied.seq, Pos: r.applied.pos, CommitTime: r.applied.commit},
	}
	same := p.Read.Seq == r.saved.Read.Seq && bytes.Equal(p.Read.Pos, r.saved.Read.Pos) &&
		p.Applied.Seq == r.saved.Applied.Seq && bytes.Equal(p.Applied.Pos, r.saved.Applied.Pos)
	r.mu.Unlock()
	if same && !force {
		return nil
	}
	p.SavedAt = time.Now()
	if err := r.opts.Store.SaveRelay(r.opts.Channel, p); err != nil {
		return err
	}
	r.mu.Lock()
	r.saved = p
	r.mu.Unlock()
	return nil
}
