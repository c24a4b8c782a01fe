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

// writeLoop appends what the source side reads, in groups: a group is
// what arrives within groupDelay of its first Txn (or maxGroup Txns),
// written, synced as the policy says and published at once. Grouping keeps
// the write calls and the applier's wake-ups per Txn low; it adds at most
// groupDelay of latency. While a group gathers, the writer sleeps until its
// deadline rather than waking for every Txn, and then takes what queued.
func (r *Relay) writeLoop(ctx context.Context, in <-chan *event.Txn) error {
	batch := make([]*event.Txn, 0, maxGroup)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var txn *event.Txn
		var ok bool
		select {
		case txn, ok = <-in:
		case <-ctx.Done():
			return nil
		}
		if !ok {
			return nil
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
			return nil
		}
	}
}

func (r *Relay) writeBatch(ctx context.Context, batch []*event.Txn) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	for i := 0; i < len(batch); {
		if r.active == nil {
			if err := r.newSegmentLocked(); err != nil {
				return err
			}
		}
		rec, err := r.encodeLocked(batch[i])
		if err != nil {
			return err
		}
		size := int64(len(rec))
		if r.written > int64(len(segMagic)) && r.written+size > r.opts.SegmentBytes {
			r.enc.rollback()
			if err := r.sealLocked(); err != nil {
				return err
			}
			continue
		}
		if !r.roomLocked(size) {
			r.enc.rollback()
			if err := r.publishLocked(); err != nil {
				return err
			}
			r.wmu.Unlock()
			err := r.waitRoom(ctx, size)
			r.wmu.Lock()
			if err != nil {
				return err
			}
			continue // the cleaner may have sealed the active segment
		}
		r.enc.commit()
		if _, err := r.bw.Write(rec); err != nil {
			return fmt.Errorf("relay: write %s: %w", r.active.path, err)
		}
		t := batch[i]
		if r.written == int64(len(segMagic)) {
			r.pendFirst = t.CommitTime
		}
		r.written += size
		r.pendLast = mark{seq: r.nextRseq, pos: t.Pos, commit: t.CommitTime}
		r.nextRseq++
		i++
	}
	return r.publishLocked()
}

// encodeLocked frames the next record in the reused scratch buffer.
func (r *Relay) encodeLocked(t *event.Txn) ([]byte, error) {
	b, err := r.enc.appendFramed(r.scratch[:0], r.nextRseq, t)
	if err != nil {
		r.enc.rollback()
		return nil, err
	}
	r.scratch = b[:0]
	return b, nil
}

// roomLocked reports whether a record of size fits under MaxBytes. An
// empty relay always takes one record, whatever its size. The room left is
// kept between calls (r.room): only the cleaner changes the held bytes
// meanwhile, and it only frees room, so r.mu is taken once per stretch of
// records rather than once per record.
func (r *Relay) roomLocked(size int64) bool {
	if size <= r.room {
		r.room -= size
		return true
	}
	r.mu.Lock()
	held := r.bytes + r.written - r.active.size
	r.mu.Unlock()
	if held+size <= r.opts.MaxBytes || held <= int64(len(segMagic)) {
		r.room = max(r.opts.MaxBytes-held-size, 0)
		return true
	}
	r.room = 0
	return false
}

// waitRoom blocks until the cleaner made room, saying "relay full".
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
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.opts.Poll):
		}
	}
}

func (r *Relay) newSegmentLocked() error {
	path := filepath.Join(r.opts.Dir, segName(r.nextRseq))
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
	if r.bw == nil {
		r.bw = bufio.NewWriterSize(f, writerBufferBytes)
	} else {
		r.bw.Reset(f)
	}
	r.file, r.enc, r.written, r.dirty = f, newEncoder(), int64(len(segMagic)), true
	r.room = 0 // the header counts: ask again
	s := &segment{first: r.nextRseq, last: r.nextRseq - 1, path: path, size: int64(len(segMagic)), created: time.Now()}
	r.active = s
	r.mu.Lock()
	r.segs = append(r.segs, s)
	r.bytes += s.size
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

// publishLocked flushes what was written, syncs it as the policy says and
// lets the applier see it.
func (r *Relay) publishLocked() error {
	if r.active == nil {
		return nil
	}
	if err := r.bw.Flush(); err != nil {
		return fmt.Errorf("relay: write %s: %w", r.active.path, err)
	}
	if r.written == r.active.size {
		return nil
	}
	r.dirty = true
	// Under batch and never the applier may see records before they are
	// durable: an OS crash that loses them also loses the checkpoint's
	// hold on them, and recover reads them again from the source.
	if r.opts.Fsync == FsyncAlways {
		if err := r.syncLocked(); err != nil {
			return err
		}
	}
	r.mu.Lock()
	s := r.active
	if s.empty() {
		s.firstCommit = r.pendFirst
	}
	r.bytes += r.written - s.size
	s.size = r.written
	s.last = r.pendLast.seq
	r.read = r.pendLast
	r.broadcastLocked()
	r.mu.Unlock()
	return nil
}

// sealLocked publishes, syncs and closes the active segment; the next
// record starts a new one.
func (r *Relay) sealLocked() error {
	if r.active == nil {
		return nil
	}
	if err := r.publishLocked(); err != nil {
		return err
	}
	r.dirty = true
	if err := r.syncLocked(); err != nil {
		return err
	}
	r.fmu.Lock()
	err := r.file.Close()
	r.fmu.Unlock()
	if err != nil {
		return fmt.Errorf("relay: close %s: %w", r.active.path, err)
	}
	r.mu.Lock()
	r.active.sealed = true
	r.broadcastLocked()
	r.mu.Unlock()
	r.active, r.file = nil, nil
	return nil
}

// abandonLocked closes the active segment after a write error, cut back
// to what was published, so that a restarted writer starts a new segment
// after whole records only.
func (r *Relay) abandonLocked() {
	if r.active == nil {
		return
	}
	r.bw.Reset(nil)
	r.mu.Lock()
	size := r.active.size
	r.active.sealed = true
	r.mu.Unlock()
	r.fmu.Lock()
	_ = r.file.Truncate(size)
	_ = r.file.Close()
	r.fmu.Unlock()
	r.active, r.file = nil, nil
}
