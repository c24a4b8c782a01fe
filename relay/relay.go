package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/source"
)

// Fsync is when the relay forces its segment files to stable storage.
type Fsync string

// Fsync policies. Whatever the policy, a sealed segment is synced before a
// new one starts, and the relay never serves a record beyond a torn one.
const (
	// FsyncAlways syncs every group of records before the applier may see
	// them: an OS crash loses nothing the relay acknowledged.
	FsyncAlways Fsync = "always"
	// FsyncBatch (the default) syncs at most every BatchInterval. A process
	// crash loses nothing (the page cache survives); an OS crash may lose
	// the last BatchInterval of records, which are read again from the
	// source on restart (the relay resumes at its last durable record).
	FsyncBatch Fsync = "batch"
	// FsyncNever leaves syncing to the OS, except at segment ends.
	FsyncNever Fsync = "never"
)

// Defaults.
const (
	DefaultMaxBytes   = 1 << 30
	DefaultMaxAge     = 10 * time.Minute
	MaxSegmentBytes   = 64 << 20
	MinSegmentBytes   = 64 << 10
	BatchInterval     = 100 * time.Millisecond
	DefaultPoll       = 200 * time.Millisecond
	maxGroup          = 1024
	groupDelay        = time.Millisecond
	readerQueue       = 2 * maxGroup
	writerBufferBytes = 1 << 20
)

// Options configures a Relay.
type Options struct {
	Channel string
	Dir     string
	// MaxBytes bounds the bytes of the segment files; when the next record
	// would pass it, the reader waits for the applier (backpressure).
	MaxBytes int64
	// MaxAge bounds how long applied records stay on disk in a segment
	// that is not full yet: the segment is then closed and deleted. It
	// never removes a record the applier has not applied.
	MaxAge time.Duration
	// SegmentBytes is the size at which a segment is closed and the next
	// one started; 0: MaxBytes/8, within 64 KiB..64 MiB.
	SegmentBytes int64
	Fsync        Fsync
	// Store holds the channel's checkpoint (the authority on what was
	// applied) and the relay's own positions.
	Store *checkpoint.Store
	// Open opens the real source at resume (nil: its configured start).
	Open func(ctx context.Context, resume event.Position) (source.Source, error)
	// Poll is how often the relay reads the applier's checkpoint to delete
	// applied segments; 0: 200ms.
	Poll   time.Duration
	Logger *slog.Logger
}

// mark is one relay position: a record's relay seq, and the source position
// and commit time of its Txn.
type mark struct {
	seq    uint64
	pos    event.Position
	commit time.Time
}

// Relay is a local, segmented, checksummed log between a source and the
// applier. Open recovers it and starts reading; OpenSource serves the
// applier; Close stops it.
type Relay struct {
	opts Options
	log  *slog.Logger
	// lock is the flocked lock file of Dir: one Relay per dir (lock.go).
	lock       *os.File
	unlockOnce sync.Once
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	mu       sync.Mutex
	segs     []*segment // in relay order; the last may be the active one
	bytes    int64      // published bytes of all segments
	read     mark       // last record published (seq = relay seq)
	applied  mark       // last record the applier's checkpoint names
	full     bool       // the writer waits for room
	state    string     // reader state, for Status
	reason   string     // why, when not reading
	readerOn bool       // a reader goroutine pair is running
	opened   bool       // the reader has opened the source in this run
	fatal    error      // the reader stopped on this error
	notify   chan struct{}
	// served lists the records served to the applier, not yet known
	// applied. smu guards it; lock order r.mu, then smu.
	smu     sync.Mutex
	served  []mark
	contact atomic.Int64 // unix ns of the last Txn read; atomic: set per Txn
	live    any          // the open real source, for LastContact
	saved   checkpoint.RelayPositions
	ctx     context.Context

	// Writer state: wmu is held while records are written and while a
	// segment is sealed (by the writer or the cleaner).
	wmu     sync.Mutex
	active  *segment
	file    *os.File
	bw      *bufio.Writer
	enc     *encoder
	written int64 // bytes written to the active file (published or not)
	dirty   bool  // written but not synced
	// fmu is held while the active file is synced, truncated or closed: the
	// batch syncer syncs without wmu, so that the writer goes on writing
	// while the disk flushes; closing waits for that sync.
	fmu       sync.Mutex
	nextRseq  uint64
	pendLast  mark // last record written, not yet published
	pendFirst time.Time
	scratch   []byte
	room      int64 // bytes the writer may still add without asking (roomLocked)
}

// Open recovers the relay in opts.Dir and starts reading the source: a torn
// last record is truncated; segments the applier's checkpoint has passed
// are deleted; the source is opened after the last record the relay holds.
func Open(opts Options) (*Relay, error) {
	if opts.Dir == "" || opts.Store == nil || opts.Open == nil || opts.Channel == "" {
		return nil, errors.New("relay: Channel, Dir, Store and Open are required")
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(max(opts.MaxBytes/8, MinSegmentBytes), MaxSegmentBytes)
	}
	switch opts.Fsync {
	case "":
		opts.Fsync = FsyncBatch
	case FsyncAlways, FsyncBatch, FsyncNever:
	default:
		return nil, fmt.Errorf("relay: fsync %q is not one of always, batch, never", opts.Fsync)
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Relay{opts: opts, log: opts.Logger.With("relay", opts.Dir), notify: make(chan struct{}), state: "starting"}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("relay dir: %w", err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	r.lock = lock
	start, err := r.recover()
	if err != nil {
		unlockDir(lock)
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.ctx, r.cancel = ctx, cancel
	r.mu.Lock()
	r.startReaderLocked(start)
	r.mu.Unlock()
	// clean follows the applier's checkpoint; under the batch policy
	// syncBehind syncs what the writer wrote without holding it up.
	r.every(ctx, r.opts.Poll, "cleaning", r.clean)
	if opts.Fsync == FsyncBatch {
		r.every(ctx, BatchInterval, "sync", r.syncBehind)
	}
	return r, nil
}

// every runs fn every d until ctx ends, in a goroutine Close waits for; a
// failure is logged and retried on the next tick.
func (r *Relay) every(ctx context.Context, d time.Duration, what string, fn func() error) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := fn(); err != nil {
				r.log.Warn("relay: "+what+" failed; retrying", "err", err)
			}
		}
	}()
}

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
	r.nextRseq = max(saved.Read.Seq, saved.Applied.Seq) + 1
	if len(segs) > 0 {
		r.nextRseq = last.rseq + 1
	}

	// The applied mark: where the checkpoint falls in the relay.
	var cpPos event.Position
	if haveCP {
		cpPos = cp.Pos
	}
	r.applied = mark{seq: r.firstSeq() - 1}
	if saved.Applied.Pos != nil && bytes.Equal(saved.Applied.Pos, cpPos) && saved.Applied.Seq < r.nextRseq {
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
			r.applied = mark{seq: r.nextRseq - 1, pos: cpPos, commit: cp.CommitTime}
		}
	}
	r.deleteAppliedLocked()
	if len(r.segs) > 0 {
		r.read = mark{seq: last.rseq, pos: last.pos, commit: last.commit}
	} else {
		r.read = mark{seq: r.nextRseq - 1, pos: r.applied.pos, commit: r.applied.commit}
	}
	r.log.Info("relay opened", "segments", len(r.segs), "bytes", r.bytes, "read_seq", r.read.seq,
		"read_position", r.read.pos.String(), "applied_seq", r.applied.seq, "applied_position", r.applied.pos.String())
	return r.read.pos, nil
}

func (r *Relay) firstSeq() uint64 {
	if len(r.segs) > 0 {
		return r.segs[0].first
	}
	return r.nextRseq
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

// Close stops reading, syncs the active segment and saves the relay's
// positions. Records already in the relay stay for the next run.
func (r *Relay) Close() error {
	r.cancel()
	r.wg.Wait()
	r.wmu.Lock()
	err := r.sealLocked()
	r.wmu.Unlock()
	if e := r.savePositions(true); err == nil {
		err = e
	}
	r.unlockOnce.Do(func() {
		if e := unlockDir(r.lock); err == nil && e != nil {
			err = fmt.Errorf("relay: release the lock on %s: %w", r.opts.Dir, e)
		}
	})
	return err
}

// startReaderLocked starts the goroutines that read the source and write
// records, opening the source at start. r.mu is held.
func (r *Relay) startReaderLocked(start event.Position) {
	if r.readerOn {
		return
	}
	r.readerOn, r.fatal, r.state, r.reason = true, nil, "starting", ""
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
			r.wmu.Lock()
			r.abandonLocked()
			r.wmu.Unlock()
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
			r.state, r.reason = "error", r.fatal.Error()
			r.log.Error("relay reader stopped", "err", r.fatal)
		} else {
			r.state, r.reason = "stopped", ""
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
			r.setReaderState("source retrying", fmt.Sprintf("open source: %v", err))
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
		r.setReaderState("reading", "")
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
				r.setReaderState("source retrying", err.Error())
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

func (r *Relay) setReaderState(state, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full && state == "reading" {
		return // the writer's "relay full" says more
	}
	r.state, r.reason = state, reason
	r.broadcastLocked()
}

// broadcastLocked wakes everyone waiting for a change. r.mu is held.
func (r *Relay) broadcastLocked() {
	close(r.notify)
	r.notify = make(chan struct{})
}

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
				r.state, r.reason = "reading", ""
			}
			r.mu.Unlock()
			return nil
		}
		if !r.full {
			r.full = true
			r.state = "relay full"
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

// syncLocked syncs the active file. wmu is held.
func (r *Relay) syncLocked() error {
	if !r.dirty || r.file == nil {
		return nil
	}
	r.fmu.Lock()
	err := r.file.Sync()
	r.fmu.Unlock()
	if err != nil {
		return fmt.Errorf("relay: sync %s: %w", r.active.path, err)
	}
	r.dirty = false
	return nil
}

// syncBehind syncs the active file while the writer goes on: fmu, not
// wmu, is held during the sync, and a seal waits for it.
func (r *Relay) syncBehind() error {
	r.wmu.Lock()
	f, dirty := r.file, r.dirty
	if f == nil || !dirty {
		r.wmu.Unlock()
		return nil
	}
	path := r.active.path
	r.dirty = false // what is written from now on is dirty again
	r.fmu.Lock()
	r.wmu.Unlock()
	err := f.Sync()
	r.fmu.Unlock()
	if err != nil {
		r.wmu.Lock()
		if r.file == f {
			r.dirty = true
		}
		r.wmu.Unlock()
		return fmt.Errorf("relay: sync %s: %w", path, err)
	}
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

// clean follows the applier's checkpoint: it marks what was applied,
// deletes segments wholly applied, seals an applied active segment when the
// relay is full or the segment is older than MaxAge, syncs under the batch
// policy, and saves the relay's positions.
func (r *Relay) clean() error {
	cp, ok, err := r.opts.Store.Load(r.opts.Channel)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if ok && cp.Pos != nil && !bytes.Equal(cp.Pos, r.applied.pos) {
		r.smu.Lock()
		for i, m := range r.served {
			if bytes.Equal(m.pos, cp.Pos) {
				r.applied = m
				r.served = append(r.served[:0], r.served[i+1:]...)
				r.broadcastLocked()
				break
			}
		}
		r.smu.Unlock()
	}
	applied := r.applied.seq
	full := r.full
	r.mu.Unlock()

	r.wmu.Lock()
	if a := r.active; a != nil {
		r.mu.Lock()
		done := !a.empty() && a.last <= applied && a.size == r.written
		r.mu.Unlock()
		if done && (full || time.Since(a.created) >= r.opts.MaxAge) {
			if err := r.sealLocked(); err != nil {
				r.wmu.Unlock()
				return err
			}
		}
	}
	r.wmu.Unlock()

	r.mu.Lock()
	n := r.deleteAppliedLocked()
	if n > 0 {
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

// Status is the relay's operator view, in /status under "relay".
type Status struct {
	Dir string `json:"dir"`
	// State is the reader's: reading, relay full, source retrying, error,
	// stopped. Reason says why when it is not reading.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// ReadSeq/ReadPosition: the last record the relay read from the source
	// and holds. AppliedSeq/AppliedPosition: the last record the applier's
	// checkpoint names.
	ReadSeq           uint64    `json:"read_seq"`
	ReadPosition      string    `json:"read_position"`
	ReadCommitTime    time.Time `json:"read_commit_time,omitzero"`
	AppliedSeq        uint64    `json:"applied_seq"`
	AppliedPosition   string    `json:"applied_position"`
	AppliedCommitTime time.Time `json:"applied_commit_time,omitzero"`
	// Txns is how many records the applier has not applied; Bytes what the
	// segment files hold (applied records included until deleted).
	Txns     uint64 `json:"txns"`
	Bytes    int64  `json:"bytes"`
	MaxBytes int64  `json:"max_bytes"`
	Segments int    `json:"segments"`
	Full     bool   `json:"full"`
	// ReadAheadSeconds is the source commit time between the two
	// positions; OldestUnappliedSeconds the age (now minus source commit
	// time) of the oldest record not applied, 0 when none.
	ReadAheadSeconds       float64 `json:"read_ahead_seconds"`
	OldestUnappliedSeconds float64 `json:"oldest_unapplied_seconds"`
}

// Status returns a snapshot; safe from any goroutine.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Dir: r.opts.Dir, State: r.state, Reason: r.reason,
		ReadSeq: r.read.seq, ReadPosition: r.read.pos.String(), ReadCommitTime: r.read.commit,
		AppliedSeq: r.applied.seq, AppliedPosition: r.applied.pos.String(), AppliedCommitTime: r.applied.commit,
		Bytes: r.bytes, MaxBytes: r.opts.MaxBytes, Segments: len(r.segs), Full: r.full}
	if r.read.seq > r.applied.seq {
		st.Txns = r.read.seq - r.applied.seq
		if !r.read.commit.IsZero() && !r.applied.commit.IsZero() {
			st.ReadAheadSeconds = max(r.read.commit.Sub(r.applied.commit).Seconds(), 0)
		}
		// The oldest unapplied record: the first one served and not known
		// applied, else the first of the segment holding applied+1.
		var oldest time.Time
		r.smu.Lock()
		if len(r.served) > 0 {
			oldest = r.served[0].commit
		}
		r.smu.Unlock()
		if oldest.IsZero() {
			for _, s := range r.segs {
				if s.last > r.applied.seq {
					oldest = s.firstCommit
					break
				}
			}
		}
		if !oldest.IsZero() {
			st.OldestUnappliedSeconds = max(time.Since(oldest).Seconds(), 0)
		}
	}
	return st
}
