package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
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
// applier; Close stops it. The package comment (doc.go) lists its
// goroutines and what each owns.
type Relay struct {
	opts Options
	log  *slog.Logger
	// lock is the flocked lock file of Dir: one Relay per dir (lock.go).
	lock       *os.File
	unlockOnce sync.Once
	ctx        context.Context // the relay's lifetime; cancel ends it (Close)
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	// sealReq asks the writer to seal the active segment if it is wholly
	// applied (the cleaner sends it; only the writer seals). Buffered 1: a
	// request waits for the writer if none is running.
	sealReq chan struct{}

	// w is the writer's state: owned by the writer goroutine while one
	// runs, by Open before the first starts and by Close after the last
	// stopped (writer.go). Nothing else reads or writes it.
	w writer

	contact atomic.Int64 // unix ns of the last Txn read; atomic: set per Txn

	// mu guards everything below, and the fields of the segments in segs.
	// It is the relay's one lock: never held across disk I/O of the active
	// segment nor across a wait.
	mu       sync.Mutex
	segs     []*segment // in relay order; the last may be the active one
	bytes    int64      // published bytes of all segments
	read     mark       // last record published (seq = relay seq)
	applied  mark       // last record the applier's checkpoint names
	full     bool       // the writer waits for room
	state    State      // reader state, for Status
	reason   string     // why, when not reading
	readerOn bool       // a reader goroutine pair is running
	opened   bool       // the reader has opened the source in this run
	fatal    error      // the reader stopped on this error
	notify   chan struct{}
	// served lists the records served to the applier, not yet known
	// applied (the view appends, the cleaner trims).
	served []mark
	live   any // the open real source, for LastContact
	saved  checkpoint.RelayPositions
	// unsynced is the active file while it holds published bytes not yet
	// synced, for the flusher (FsyncBatch); unsyncedGen counts publishes,
	// so that a sync clears unsynced only if nothing was published during
	// it. syncing is the file the flusher is syncing now: a seal waits for
	// that sync to end before it closes the file.
	unsynced    *os.File
	unsyncedGen uint64
	syncing     *os.File
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
	r := &Relay{opts: opts, log: opts.Logger.With("relay", opts.Dir), notify: make(chan struct{}), state: StateStarting,
		sealReq: make(chan struct{}, 1)}
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
	// The cleaner follows the applier's checkpoint; under the batch
	// policy the flusher syncs what the writer wrote without holding it up.
	r.every(ctx, r.opts.Poll, "cleaning", r.clean)
	if opts.Fsync == FsyncBatch {
		r.every(ctx, BatchInterval, "sync", r.flush)
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

// Close stops reading, syncs the active segment and saves the relay's
// positions. Records already in the relay stay for the next run.
func (r *Relay) Close() error {
	r.cancel()
	r.wg.Wait()
	err := r.seal() // every goroutine has stopped: Close owns the writer
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

// broadcastLocked wakes everyone waiting for a change. r.mu is held.
func (r *Relay) broadcastLocked() {
	close(r.notify)
	r.notify = make(chan struct{})
}
