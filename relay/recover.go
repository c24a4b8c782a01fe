package relay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hamal-replication/hamal/event"
)

// recover scans the segments, truncates a torn tail, reconciles the relay
// with the applier's checkpoint and returns where to open the source.
func (r *Relay) recover() (event.Position, error) {
	segs, err := listSegments(r.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("relay dir: %w", err)
	}
	cp, haveCP, err := r.opts.Store.Load(r.opts.Channel)
	if err != nil {
		return nil, err
	}
	saved, _, err := r.opts.Store.LoadRelay(r.opts.Channel)
	if err != nil {
		return nil, err
	}
	r.saved = saved
	var last recordHead
	for i, s := range segs {
		if i < len(segs)-1 {
			// Sealed and synced before the next one started: its range ends
			// before the next segment's first record.
			s.last = segs[i+1].first - 1
			h, err := firstHead(s)
			var ferr *FormatError
			if errors.As(err, &ferr) {
				return nil, err
			}
			if err == nil {
				s.firstCommit = h.commit
			}
			continue
		}
		end, torn, err := scanSegment(s, func(h recordHead) error { last = h; return nil })
		var ferr *FormatError
		if errors.As(err, &ferr) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("relay: %w; the relay cannot be read: remove %s to rebuild it from the checkpoint", err, r.opts.Dir)
		}
		if torn {
			r.log.Warn("relay: truncating a torn last record (written when the process stopped); it was never applied and is read again from the source",
				"segment", s.path, "valid_bytes", end, "file_bytes", s.size)
			if err := truncateSync(s.path, end); err != nil {
				return nil, fmt.Errorf("relay: truncate torn record: %w", err)
			}
			s.size = end
		}
		if s.empty() {
			if err := os.Remove(s.path); err != nil {
				return nil, fmt.Errorf("relay: %w", err)
			}
			segs = segs[:i]
		}
	}
	if len(segs) > 0 && last.rseq == 0 {
		// The last segment was empty and removed: the tail is the end of
		// the one before, whose last record we now read.
		if err := scanLast(segs[len(segs)-1], &last); err != nil {
			return nil, err
		}
	}
	for _, s := range segs {
		r.bytes += s.size
	}
	r.segs = segs
	r.w.nextRseq = max(saved.Read.Seq, saved.Applied.Seq) + 1
	if len(segs) > 0 {
		r.w.nextRseq = last.rseq + 1
	}

	// The applied mark: where the checkpoint falls in the relay.
	var cpPos event.Position
	if haveCP {
		cpPos = cp.Pos
	}
	r.applied = mark{seq: r.firstSeq() - 1}
	if saved.Applied.Pos != nil && bytes.Equal(saved.Applied.Pos, cpPos) && saved.Applied.Seq < r.w.nextRseq {
		r.applied = mark{seq: saved.Applied.Seq, pos: saved.Applied.Pos, commit: saved.Applied.CommitTime}
	} else if cpPos != nil {
		m, found, err := r.find(cpPos, saved.Applied.Seq)
		if err != nil {
			return nil, err
		}
		switch {
		case found:
			r.applied = m
		case len(r.segs) > 0:
			// The relay does not hold the record the checkpoint names (it
			// lost unsynced records in an OS crash, or belongs to another
			// run): the checkpoint is the authority; read again from it.
			r.log.Warn("relay: the applier's checkpoint is not in the relay; discarding the relay and reading the source again from the checkpoint",
				"checkpoint", cpPos.String(), "segments", len(r.segs))
			for _, s := range r.segs {
				if err := os.Remove(s.path); err != nil {
					return nil, fmt.Errorf("relay: %w", err)
				}
			}
			r.segs, r.bytes = nil, 0
			fallthrough
		default:
			r.applied = mark{seq: r.w.nextRseq - 1, pos: cpPos, commit: cp.CommitTime}
		}
	}
	r.deleteAppliedLocked()
	if len(r.segs) > 0 {
		r.read = mark{seq: last.rseq, pos: last.pos, commit: last.commit}
	} else {
		r.read = mark{seq: r.w.nextRseq - 1, pos: r.applied.pos, commit: r.applied.commit}
	}
	r.log.Info("relay opened", "segments", len(r.segs), "bytes", r.bytes, "read_seq", r.read.seq,
		"read_position", r.read.pos.String(), "applied_seq", r.applied.seq, "applied_position", r.applied.pos.String())
	return r.read.pos, nil
}

func (r *Relay) firstSeq() uint64 {
	if len(r.segs) > 0 {
		return r.segs[0].first
	}
	return r.w.nextRseq
}

func firstHead(s *segment) (recordHead, error) {
	rr, err := openRecords(s.path)
	if err != nil {
		return recordHead{}, err
	}
	defer rr.close()
	payload, err := rr.next(s.size)
	if err != nil {
		return recordHead{}, err
	}
	return peekHead(payload)
}

func scanLast(s *segment, last *recordHead) error {
	_, torn, err := scanSegment(s, func(h recordHead) error { *last = h; return nil })
	if err == nil && torn {
		err = fmt.Errorf("segment %s is damaged before its end", s.path)
	}
	if err != nil {
		return fmt.Errorf("relay: %w; remove %s to rebuild the relay from the checkpoint", err, filepath.Dir(s.path))
	}
	return nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// find scans the published records after relay seq after for one whose
// position is pos.
func (r *Relay) find(pos event.Position, after uint64) (mark, bool, error) {
	r.mu.Lock()
	segs := make([]segment, 0, len(r.segs))
	for _, s := range r.segs {
		if s.last > after {
			segs = append(segs, *s)
		}
	}
	r.mu.Unlock()
	var found mark
	errFound := errors.New("found")
	for i := range segs {
		s := &segs[i]
		_, _, err := scanSegment(s, func(h recordHead) error {
			if h.rseq > after && bytes.Equal(h.pos, pos) {
				found = mark{seq: h.rseq, pos: h.pos, commit: h.commit}
				return errFound
			}
			return nil
		})
		if errors.Is(err, errFound) {
			return found, true, nil
		}
		if err != nil {
			return mark{}, false, fmt.Errorf("relay: look for position %s: %w", pos, err)
		}
	}
	return mark{}, false, nil
}
