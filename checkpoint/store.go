package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hamal-replication/hamal/event"
)

// Store errors.
var (
	// ErrLocked is returned by Open when another process (or another Store in
	// this process) holds the directory's Pebble LOCK file.
	ErrLocked = errors.New("checkpoint store locked by another process")
	// ErrClosed is returned by Store methods called after Close.
	ErrClosed = errors.New("checkpoint store closed")
)

// Key prefixes in the store. Other packages own their own namespaces
// (schema/<channel>/…, migration/<plan>/…) and use Get, Set, Delete and Scan.
const checkpointPrefix = "checkpoint/"

// checkpointVersion is the version of the JSON encoding of a Checkpoint.
const checkpointVersion = 1

// Defaults that keep one process per channel small.
const (
	defaultMemTableSize = 4 << 20
	defaultCacheSize    = 1 << 20
)

// Checkpoint is a persisted resume point of one channel.
type Checkpoint struct {
	Seq        uint64 // seq numbering is per process run; stored for information
	Pos        event.Position
	CommitTime time.Time
	SavedAt    time.Time
}

// checkpointJSON is the stored form of a Checkpoint. PosText repeats Pos as
// text when it is valid UTF-8, for people reading the store with a debugger;
// Load reads only Pos.
type checkpointJSON struct {
	Version    int       `json:"version"`
	Seq        uint64    `json:"seq"`
	Pos        []byte    `json:"pos"`
	PosText    string    `json:"pos_text,omitempty"`
	CommitTime time.Time `json:"commit_time"`
	SavedAt    time.Time `json:"saved_at"`
}

// Option configures Open.
type Option func(*storeOptions)

type storeOptions struct {
	log          *slog.Logger
	memTableSize uint64
	cacheSize    int64
}

// WithLogger routes Pebble's log messages to log: informational messages at
// debug level, errors at error level. Without it they are discarded.
func WithLogger(log *slog.Logger) Option {
	return func(o *storeOptions) { o.log = log }
}

// WithMemTableSize sets Pebble's memtable size in bytes (default 4 MiB).
func WithMemTableSize(bytes uint64) Option {
	return func(o *storeOptions) { o.memTableSize = bytes }
}

// WithCacheSize sets Pebble's block cache size in bytes (default 1 MiB).
func WithCacheSize(bytes int64) Option {
	return func(o *storeOptions) { o.cacheSize = bytes }
}

// Store is a Pebble database holding checkpoints and other small records of
// one process. All writes use pebble.Sync: once a write returns, it survives
// a crash of the process or the machine.
//
// All methods may be called concurrently. Methods called after Close return
// ErrClosed.
type Store struct {
	dir string

	mu     sync.RWMutex // held for reading by every operation, for writing by Close
	db     *pebble.DB   // nil once closed
	dbLock *pebble.Lock
	// broken holds the fatal error Pebble reported (a failed disk); every
	// later write returns it. The store must be reopened by a restart.
	broken atomic.Pointer[error]
}

// Open opens the store in dir, creating dir and the database if needed. It
// fails when dir cannot be created or written, and with an error wrapping
// ErrLocked when another process has the store open. Errors name dir.
func Open(dir string, opts ...Option) (*Store, error) {
	o := storeOptions{
		memTableSize: defaultMemTableSize,
		cacheSize:    defaultCacheSize,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if dir == "" {
		return nil, errors.New("open checkpoint store: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open checkpoint store %q: create directory: %w", dir, err)
	}

	// Take the lock ourselves, so a lock held elsewhere is told apart from
	// the other ways Open can fail.
	dbLock, err := pebble.LockDirectory(dir, vfs.Default)
	if err != nil {
		if isLockHeld(err) {
			return nil, fmt.Errorf("open checkpoint store %q: %w (it holds %s): %w",
				dir, ErrLocked, filepath.Join(dir, "LOCK"), err)
		}
		return nil, fmt.Errorf("open checkpoint store %q: lock directory: %w", dir, err)
	}

	logger := pebbleLogger{log: o.log.With("component", "pebble", "dir", dir)}
	db, err := pebble.Open(dir, &pebble.Options{
		Lock:         dbLock,
		Logger:       logger,
		MemTableSize: o.memTableSize,
		CacheSize:    o.cacheSize,
		// Checkpoints are tiny; a small L0 keeps few files around.
		MaxOpenFiles: 64,
	})
	if err != nil {
		_ = dbLock.Close()
		return nil, fmt.Errorf("open checkpoint store %q: %w", dir, err)
	}
	return &Store{dir: dir, db: db, dbLock: dbLock}, nil
}

// isLockHeld reports whether err from pebble.LockDirectory means that
// someone else holds the lock, as opposed to the LOCK file being impossible to
// create.
func isLockHeld(err error) bool {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return false // os.Create of the LOCK file failed
	}
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
		return true // fcntl(F_SETLK) refused: another process holds it
	}
	// Pebble keeps its own table of locks held by this process.
	return strings.Contains(err.Error(), "lock held by current process")
}

// Dir returns the directory the store was opened in.
func (s *Store) Dir() string { return s.dir }

// Close flushes and closes the database and releases the directory lock.
// Close is idempotent.
func (s *Store) Close() (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(pebbleFatal)
			if !ok {
				panic(r)
			}
			s.db = nil
			_ = s.dbLock.Close()
			err = fmt.Errorf("close checkpoint store %q: %s", s.dir, f.msg)
		}
	}()
	err = s.db.Close()
	s.db = nil
	if lockErr := s.dbLock.Close(); lockErr != nil && err == nil {
		err = lockErr
	}
	if err != nil {
		return fmt.Errorf("close checkpoint store %q: %w", s.dir, err)
	}
	return nil
}

func checkpointKey(channel string) string { return checkpointPrefix + channel }

// Load returns the checkpoint of channel; ok is false when there is none.
func (s *Store) Load(channel string) (c Checkpoint, ok bool, err error) {
	if channel == "" {
		return Checkpoint{}, false, errors.New("load checkpoint: empty channel name")
	}
	key := checkpointKey(channel)
	raw, ok, err := s.Get(key)
	if err != nil || !ok {
		return Checkpoint{}, false, err
	}
	var stored checkpointJSON
	if err := json.Unmarshal(raw, &stored); err != nil {
		return Checkpoint{}, false, fmt.Errorf("load %s from %q: decode: %w", key, s.dir, err)
	}
	if stored.Version != checkpointVersion {
		return Checkpoint{}, false, fmt.Errorf("load %s from %q: unsupported version %d (want %d)",
			key, s.dir, stored.Version, checkpointVersion)
	}
	return Checkpoint{
		Seq:        stored.Seq,
		Pos:        event.Position(stored.Pos),
		CommitTime: stored.CommitTime,
		SavedAt:    stored.SavedAt,
	}, true, nil
}

// Save durably replaces the checkpoint of channel with c.
func (s *Store) Save(channel string, c Checkpoint) error {
	if channel == "" {
		return errors.New("save checkpoint: empty channel name")
	}
	stored := checkpointJSON{
		Version:    checkpointVersion,
		Seq:        c.Seq,
		Pos:        []byte(c.Pos),
		CommitTime: c.CommitTime,
		SavedAt:    c.SavedAt,
	}
	if utf8.Valid(c.Pos) {
		stored.PosText = string(c.Pos)
	}
	raw, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("save checkpoint of %s at seq %d: encode: %w", channel, c.Seq, err)
	}
	return s.Set(checkpointKey(channel), raw)
}

// Get returns a copy of the value stored under key; ok is false when there is
// none.
func (s *Store) Get(key string) (value []byte, ok bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, false, ErrClosed
	}
	raw, closer, err := s.db.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get %s from %q: %w", key, s.dir, err)
	}
	value = append([]byte(nil), raw...)
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("get %s from %q: %w", key, s.dir, err)
	}
	return value, true, nil
}

// Set durably stores value under key.
func (s *Store) Set(key string, value []byte) error {
	return s.write("set "+key, func(db *pebble.DB) error { return db.Set([]byte(key), value, pebble.Sync) })
}

// write runs one durable write under the read lock, refusing it once the
// store is closed or broken, and turning Pebble's fatal report into an error.
func (s *Store) write(op string, fn func(*pebble.DB) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	if b := s.broken.Load(); b != nil {
		return *b
	}
	defer s.recoverFatal(&err, op)
	if err := fn(s.db); err != nil {
		return fmt.Errorf("%s in %q: %w", op, s.dir, err)
	}
	return nil
}

// recoverFatal turns the panic of pebbleLogger.Fatalf (Pebble's report of
// a failed commit: the disk failed) into an error for the caller, and marks
// the store broken, so the channel stops in state error instead of
// crashing, with the checkpoint where it was.
func (s *Store) recoverFatal(err *error, op string) {
	r := recover()
	if r == nil {
		return
	}
	f, ok := r.(pebbleFatal)
	if !ok {
		panic(r)
	}
	e := fmt.Errorf("%s in %q: the checkpoint store failed (%s): check the disk of checkpoint.dir, then restart hamal; nothing after the last saved checkpoint is lost", op, s.dir, f.msg)
	s.broken.Store(&e)
	*err = e
}

// Delete durably removes key. Deleting a missing key is not an error.
func (s *Store) Delete(key string) error {
	return s.write("delete "+key, func(db *pebble.DB) error { return db.Delete([]byte(key), pebble.Sync) })
}

// Scan calls fn for every key that starts with prefix, in key order, with a
// copy of its value. It stops at the first error fn returns and returns it
// unwrapped. fn must not call Close.
func (s *Store) Scan(prefix string, fn func(key string, value []byte) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	iterOpts := &pebble.IterOptions{}
	if prefix != "" {
		iterOpts.LowerBound = []byte(prefix)
		iterOpts.UpperBound = prefixEnd([]byte(prefix))
	}
	iter, err := s.db.NewIter(iterOpts)
	if err != nil {
		return fmt.Errorf("scan %q in %q: %w", prefix, s.dir, err)
	}
	for iter.First(); iter.Valid(); iter.Next() {
		value, err := iter.ValueAndErr()
		if err != nil {
			_ = iter.Close()
			return fmt.Errorf("scan %q in %q: read %s: %w", prefix, s.dir, iter.Key(), err)
		}
		if err := fn(string(iter.Key()), append([]byte(nil), value...)); err != nil {
			_ = iter.Close()
			return err
		}
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("scan %q in %q: %w", prefix, s.dir, err)
	}
	return nil
}

// prefixEnd returns the smallest key greater than every key with the given
// prefix, or nil (no upper bound) when the prefix is all 0xff bytes.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// pebbleLogger routes Pebble's logging to slog. Pebble calls Fatalf when it
// cannot go on safely (a failed MANIFEST sync, corruption) and does not
// expect it to return, so Fatalf logs at error level and then panics with the
// message: the process stops loudly, with a stack trace, instead of exiting
// silently as Pebble's default logger does.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

// pebbleFatal is the panic value of Fatalf, recovered by the Store's write
// methods (see recoverFatal); anywhere else it still ends the process.
type pebbleFatal struct{ msg string }

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("pebble fatal error", "error", msg)
	panic(pebbleFatal{msg: msg})
}
