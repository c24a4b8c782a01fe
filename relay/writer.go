package relay

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// writer is the state of the one goroutine that appends records (the
// writer). Nothing else touches it while that goroutine runs; Open
// (recover) sets nextRseq before the first one starts, and Close seals the
// active segment after the last one stopped. What the other goroutines
// need of it is published under r.mu: the segment list with each segment's
// size, last seq and sealed flag, the read mark, and the file the flusher
// syncs.
type writer struct {
	active    *segment // the segment being appended to; nil between segments
	file      *os.File
	bw        *bufio.Writer
	enc       *encoder
	written   int64 // bytes written to the active file (published or not)
	nextRseq  uint64
	pendLast  mark      // last record written, not yet published
	pendFirst time.Time // commit time of the first record of the active file
	scratch   []byte
	room      int64 // bytes that may still be added without asking (hasRoom)
}

// writeLoop appends what the source side reads, in groups: a group is
// what arrives within groupDelay of its first Txn (or maxGroup Txns),
// written, synced as the policy says and published at once. Grouping keeps
// the write calls and the applier's wake-ups per Txn low; it adds at most
// groupDelay of latency. While a group gathers, the writer sleeps until its
// deadline rather than waking for every Txn, and then takes what queued.
//
// When in is closed (the source side stopped) the active segment is
// sealed: a restarted pair starts a new one, and the cleaner can have this
// one deleted once it is applied. When ctx ends it is left to Close. A
// non-nil error is a write error: the caller abandons the active segment.
func (r *Relay) writeLoop(ctx context.Context, in <-chan *event.Txn) error {
	batch := make([]*event.Txn, 0, maxGroup)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var txn *event.Txn
		var ok bool
		select {
		case txn, ok = <-in:
		case <-r.sealReq:
			if err := r.sealIfApplied(); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
			return nil
		}
		if !ok {
			return r.seal()
		}
		batch = append(batch[:0], txn)
		deadline := time.Now().Add(groupDelay)
		closed := false
		for {
		drain:
			for len(batch) < maxGroup {
				select {
				case t, ok := <-in:
					if !ok {
						closed = true
						break drain
					}
					batch = append(batch, t)
				default:
					break drain
				}
			}
			wait := time.Until(deadline)
			if closed || len(batch) == maxGroup || wait <= 0 {
				break
			}
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return nil
			}
		}
		if err := r.writeBatch(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		clear(batch) // the Txns are on disk: let them go
		if closed {
			return r.seal()
		}
	}
}

func (r *Relay) writeBatch(ctx context.Context, batch []*event.Txn) error {
	w := &r.w
	for i := 0; i < len(batch); {
		if w.active == nil {
			if err := r.newSegment(); err != nil {
				return err
			}
		}
		rec, err := r.encode(batch[i])
		if err != nil {
			return err
		}
		size := int64(len(rec))
		if w.written > int64(len(segMagic)) && w.written+size > r.opts.SegmentBytes {
			w.enc.rollback()
			if err := r.seal(); err != nil {
				return err
			}
			continue
		}
		if !r.hasRoom(size) {
			w.enc.rollback()
			if err := r.publish(); err != nil {
				return err
			}
			if err := r.waitRoom(ctx, size); err != nil {
				return err
			}
			continue // waitRoom may have sealed the active segment
		}
		w.enc.commit()
		if _, err := w.bw.Write(rec); err != nil {
			return fmt.Errorf("relay: write %s: %w", w.active.path, err)
		}
		t := batch[i]
		if w.written == int64(len(segMagic)) {
			w.pendFirst = t.CommitTime
		}
		w.written += size
		w.pendLast = mark{seq: w.nextRseq, pos: t.Pos, commit: t.CommitTime}
		w.nextRseq++
		i++
	}
	return r.publish()
}

// encode frames the next record in the reused scratch buffer.
func (r *Relay) encode(t *event.Txn) ([]byte, error) {
	w := &r.w
	b, err := w.enc.appendFramed(w.scratch[:0], w.nextRseq, t)
	if err != nil {
		w.enc.rollback()
		return nil, err
	}
	w.scratch = b[:0]
	return b, nil
}

// hasRoom reports whether a record of size fits under MaxBytes. An empty
// relay always takes one record, whatever its size. The room left is kept
// between calls (w.room): only the cleaner changes the held bytes
// meanwhile, and it only frees room, so r.mu is taken once per stretch of
// records rather than once per record.
func (r *Relay) hasRoom(size int64) bool {
	w := &r.w
	if size <= w.room {
		w.room -= size
		return true
	}
	r.mu.Lock()
	held := r.bytes + w.written - w.active.size
	r.mu.Unlock()
	if held+size <= r.opts.MaxBytes || held <= int64(len(segMagic)) {
		w.room = max(r.opts.MaxBytes-held-size, 0)
		return true
	}
	w.room = 0
	return false
}

// waitRoom blocks until applied segments were deleted, saying "relay
// full". Everything written is published while it waits, so it serves the
// cleaner's requests to seal the (applied) active segment: that is how a
// relay whose every record sits in the active segment makes room.
func (r *Relay) waitRoom(ctx context.Context, size int64) error {
	logged := false
	for {
		r.mu.Lock()
		held := r.bytes // the writer published everything before waiting
		room := held+size <= r.opts.MaxBytes || held <= int64(len(segMagic))
		if room {
			if r.full {
				r.full = false
				r.state, r.reason = StateReading, ""
			}
			r.mu.Unlock()
			return nil
		}
		if !r.full {
			r.full = true
			r.state = StateFull
			r.reason = fmt.Sprintf("relay full: %d of max_bytes %d bytes hold transactions the applier has not applied; the source waits", held, r.opts.MaxBytes)
			r.broadcastLocked()
		}
		ch := r.notify
		r.mu.Unlock()
		if !logged {
			r.log.Warn("relay full; reading the source waits for the applier", "bytes", held, "max_bytes", r.opts.MaxBytes)
			logged = true
		}
		select {
		case <-ch:
		case <-r.sealReq:
			if err := r.sealIfApplied(); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.opts.Poll):
		}
	}
}

func (r *Relay) newSegment() error {
	w := &r.w
	path := filepath.Join(r.opts.Dir, segName(w.nextRseq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("relay: new segment: %w", err)
	}
	if _, err := f.WriteString(segMagic); err != nil {
		f.Close()
		return fmt.Errorf("relay: new segment: %w", err)
	}
	if r.opts.Fsync != FsyncNever {
		if err := syncDir(r.opts.Dir); err != nil {
			f.Close()
			return fmt.Errorf("relay: new segment: %w", err)
		}
	}
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, writerBufferBytes)
	} else {
		w.bw.Reset(f)
	}
	w.file, w.enc, w.written = f, newEncoder(), int64(len(segMagic))
	w.room = 0 // the header counts: ask again
	s := &segment{first: w.nextRseq, last: w.nextRseq - 1, path: path, size: int64(len(segMagic)), created: time.Now()}
	w.active = s
	r.mu.Lock()
	r.segs = append(r.segs, s)
	r.bytes += s.size
	r.markUnsyncedLocked()
	r.mu.Unlock()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// publish flushes what was written, syncs it as the policy says and lets
// the applier see it.
func (r *Relay) publish() error {
	w := &r.w
	if w.active == nil {
		return nil
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("relay: write %s: %w", w.active.path, err)
	}
	// active.size is only ever written by this goroutine: reading it
	// without r.mu is safe.
	if w.written == w.active.size {
		return nil
	}
	// Under batch and never the applier may see records before they are
	// durable: an OS crash that loses them also loses the checkpoint's
	// hold on them, and recover reads them again from the source.
	if r.opts.Fsync == FsyncAlways {
		if err := w.file.Sync(); err != nil {
			return fmt.Errorf("relay: sync %s: %w", w.active.path, err)
		}
	}
	r.mu.Lock()
	s := w.active
	if s.empty() {
		s.firstCommit = w.pendFirst
	}
	r.bytes += w.written - s.size
	s.size = w.written
	s.last = w.pendLast.seq
	r.read = w.pendLast
	r.markUnsyncedLocked()
	r.broadcastLocked()
	r.mu.Unlock()
	return nil
}

// markUnsyncedLocked hands the active file to the flusher: it holds bytes
// not yet synced. r.mu is held.
func (r *Relay) markUnsyncedLocked() {
	if r.opts.Fsync == FsyncBatch {
		r.unsynced = r.w.file
		r.unsyncedGen++
	}
}

// sealIfApplied seals the active segment when every record in it was
// applied, and deletes it. The cleaner asks for it when the relay is full
// or the segment is older than MaxAge; only the writer may seal.
func (r *Relay) sealIfApplied() error {
	w := &r.w
	a := w.active
	if a == nil {
		return nil
	}
	r.mu.Lock()
	done := !a.empty() && a.last <= r.applied.seq && a.size == w.written
	r.mu.Unlock()
	if !done {
		return nil
	}
	if err := r.seal(); err != nil {
		return err
	}
	r.mu.Lock()
	if r.deleteAppliedLocked() > 0 {
		r.broadcastLocked()
	}
	r.mu.Unlock()
	return nil
}

// seal publishes, syncs and closes the active segment; the next record
// starts a new one.
func (r *Relay) seal() error {
	w := &r.w
	if w.active == nil {
		return nil
	}
	if err := r.publish(); err != nil {
		return err
	}
	if err := w.file.Sync(); err != nil {
		return fmt.Errorf("relay: sync %s: %w", w.active.path, err)
	}
	r.retire(w.file)
	if err := w.file.Close(); err != nil {
		return fmt.Errorf("relay: close %s: %w", w.active.path, err)
	}
	r.mu.Lock()
	w.active.sealed = true
	r.broadcastLocked()
	r.mu.Unlock()
	w.active, w.file = nil, nil
	return nil
}

// abandon closes the active segment after a write error, cut back to what
// was published, so that a restarted writer starts a new segment after
// whole records only.
func (r *Relay) abandon() {
	w := &r.w
	if w.active == nil {
		return
	}
	w.bw.Reset(nil)
	r.retire(w.file)
	r.mu.Lock()
	size := w.active.size
	w.active.sealed = true
	r.mu.Unlock()
	_ = w.file.Truncate(size)
	_ = w.file.Close()
	w.active, w.file = nil, nil
}
