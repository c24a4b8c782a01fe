package mongo

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hamal-replication/hamal/event"
)

// Config configures the MongoDB source.
type Config struct {
	URI string
	// TLS, when set, encrypts every connection to the deployment (the
	// connection string then sets no TLS options of its own).
	TLS *tls.Config
	// Database and Collection set the scope: both empty, the deployment;
	// Database alone, one database; both, one collection.
	Database, Collection string
	// Start is where a channel without a checkpoint begins: "current" or
	// "" (now), or a cluster time "<seconds>.<increment>".
	Start string
	// PreImages requests fullDocumentBeforeChange: whenAvailable.
	PreImages bool
	// InitialSync copies the collections in scope before streaming, when
	// the channel has no checkpoint (or its checkpoint is inside a copy).
	InitialSync bool
	// Site is the origin of writes made directly on the source.
	Site string
	// ChunkChanges and ChunkBytes bound how much of one source transaction
	// is held in memory: once its changes read so far reach either (bytes
	// of change events), they are returned as a Partial Txn and reading
	// goes on (DESIGN.md guarantee 4). Zero: 10,000 changes, 8 MiB.
	ChunkChanges int
	ChunkBytes   int
	Logger       *slog.Logger
}

const (
	defaultChunkChanges = 10_000
	defaultChunkBytes   = 8 << 20
)

// cursor is what the source needs of a change stream; *mongo.ChangeStream
// provides it (see driverCursor). TryNext returns the next event if one is
// available within the server's await time, and false otherwise (or on an
// error, which Err then reports); ResumeToken is the token to resume after
// the last event returned, or the post-batch resume token once a batch is
// exhausted.
type cursor interface {
	TryNext(ctx context.Context) bool
	Current() bson.Raw
	ResumeToken() bson.Raw
	Err() error
	Close(ctx context.Context) error
}

// openFunc opens a change stream at a position (the zero Position: the
// configured start).
type openFunc func(ctx context.Context, from Position) (cursor, error)

// Source reads a change stream and emits Txns.
type Source struct {
	cfg  Config
	log  *slog.Logger
	open openFunc
	// copier reads collections for the initial sync (nil: none).
	copier copier
	// classify turns a cursor error into the error Next returns
	// (transient or fatal).
	classify func(error) error

	out    chan item
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu      sync.Mutex
	pos     Position
	contact atomic.Int64
	closer  func()
}

type item struct {
	txn *event.Txn
	err error
}

var errClosed = errors.New("mongo source closed")

func newSource(cfg Config, open openFunc, cp copier, classify func(error) error, from Position) *Source {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Source{cfg: cfg, log: cfg.Logger, open: open, copier: cp, classify: classify, out: make(chan item, 256),
		ctx: ctx, cancel: cancel, pos: from}
	s.contact.Store(time.Now().UnixNano())
	s.wg.Add(1)
	go s.run(from)
	return s
}

func (s *Source) run(from Position) {
	defer s.wg.Done()
	if s.copier != nil && (from.Snapshot || s.cfg.InitialSync && len(from.Token) == 0 && from.ClusterTime == "") {
		at, err := s.initialSync(s.copier)
		if err != nil {
			s.fail(err)
			return
		}
		from = at
	}
	for {
		cur, err := s.open(s.ctx, from)
		if err != nil {
			s.fail(err)
			return
		}
		next, err := s.read(cur, from)
		_ = cur.Close(context.Background())
		if err != nil {
			s.fail(err)
			return
		}
		// invalidate: the stream ended; a new one starts after it.
		s.log.Info("change stream invalidated; reopening after the invalidate event", "position", next.String())
		from = next
	}
}

func (s *Source) fail(err error) {
	select {
	case s.out <- item{err: err}:
	case <-s.ctx.Done():
	}
}

func (s *Source) emit(t *event.Txn) bool {
	select {
	case s.out <- item{txn: t}:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// read turns events into Txns until the stream is invalidated (it returns
// the position to start the next stream from) or fails. from is where the
// stream was opened.
//
// Events of one transaction (same lsid and txnNumber) are consecutive in
// the stream and become one Txn whose position is the resume token of its
// last event. A transaction is complete when an event of another
// transaction (or none) follows, or when the stream has nothing more to
// return: its events are committed at once, so a getMore after the first
// of them returns the rest, never an empty batch. Heartbeats (the
// post-batch resume token while idle) are only emitted with no
// transaction pending, so a checkpoint never names a point inside one.
//
// A transaction larger than ChunkChanges or ChunkBytes is returned in
// chunks: Partial Txns positioned before the transaction (the position of
// the Txn emitted before it, or its cluster time, which startAtOperationTime
// replays whole), then the rest positioned after it. The origin marker is
// the first write of a transaction a sink applies, so every chunk carries
// its origin.
func (s *Source) read(cur cursor, from Position) (Position, error) {
	var pending *event.Txn
	var pendingID string
	var pendingBytes int
	var chunkPos event.Position // where a chunk of pending resumes: before it
	var lastBeat []byte
	var before event.Position // position after the last Txn emitted
	if len(from.Token) > 0 || from.ClusterTime != "" {
		before = EncodePosition(from)
	}
	maxChanges, maxBytes := s.cfg.ChunkChanges, s.cfg.ChunkBytes
	if maxChanges <= 0 {
		maxChanges = defaultChunkChanges
	}
	if maxBytes <= 0 {
		maxBytes = defaultChunkBytes
	}
	emit := func(t *event.Txn) bool {
		if !t.Partial {
			before = t.Pos
		}
		return s.emit(t)
	}
	flush := func() bool {
		if pending == nil {
			return true
		}
		t := pending
		pending, pendingID, pendingBytes = nil, "", 0
		return emit(s.finish(t))
	}
	for {
		if s.ctx.Err() != nil {
			return Position{}, errClosed
		}
		if !cur.TryNext(s.ctx) {
			if err := cur.Err(); err != nil {
				if s.ctx.Err() != nil {
					return Position{}, errClosed
				}
				return Position{}, s.classify(err)
			}
			if !flush() {
				return Position{}, errClosed
			}
			s.contact.Store(time.Now().UnixNano())
			if tok := cur.ResumeToken(); len(tok) > 0 && !bytes.Equal(tok, lastBeat) {
				lastBeat = append([]byte(nil), tok...)
				t := &event.Txn{Kind: event.KindHeartbeat, Pos: EncodePosition(Position{Token: lastBeat}), CommitTime: time.Now()}
				if !emit(t) {
					return Position{}, errClosed
				}
			}
			continue
		}
		s.contact.Store(time.Now().UnixNano())
		raw := append(bson.Raw(nil), cur.Current()...)
		ev, err := Decode(raw)
		if err != nil {
			return Position{}, fmt.Errorf("mongo source: %w (at %s); the event cannot be applied: fix the cause and resume, or move the checkpoint past it",
				err, s.Position())
		}
		if pending != nil && ev.TxnID != pendingID {
			if !flush() {
				return Position{}, errClosed
			}
		}
		pos := Position{Token: ev.Token, ClusterTime: FormatClusterTime(ev.ClusterTime)}
		switch {
		case ev.Invalidate:
			pos.StartAfter = true
			t := &event.Txn{Kind: event.KindHeartbeat, Pos: EncodePosition(pos), CommitTime: commitTime(ev)}
			if !emit(t) {
				return Position{}, errClosed
			}
			return pos, nil
		case ev.DDL != nil:
			t := &event.Txn{Kind: event.KindDDL, DDL: ev.DDL, Pos: EncodePosition(pos), CommitTime: commitTime(ev), Origin: s.cfg.Site}
			if !emit(t) {
				return Position{}, errClosed
			}
			continue
		}
		t := pending
		if t == nil {
			t = &event.Txn{Kind: event.KindDML}
			chunkPos = before
			if chunkPos == nil && ev.ClusterTime.T != 0 {
				chunkPos = EncodePosition(Position{ClusterTime: FormatClusterTime(ev.ClusterTime)})
			}
		}
		t.Pos = EncodePosition(pos)
		t.CommitTime = commitTime(ev)
		if ev.Change != nil {
			t.Changes = append(t.Changes, *ev.Change)
		}
		if ev.Origin != "" {
			t.Origin = ev.Origin
			t.Path = ev.Path
		}
		if ev.TxnID == "" {
			if !emit(s.finish(t)) {
				return Position{}, errClosed
			}
			continue
		}
		pending, pendingID = t, ev.TxnID
		pendingBytes += len(raw)
		if chunkPos != nil && len(t.Changes) > 0 && (len(t.Changes) >= maxChanges || pendingBytes >= maxBytes) {
			part := &event.Txn{Kind: event.KindDML, Partial: true, Pos: chunkPos, CommitTime: t.CommitTime,
				Origin: t.Origin, Path: t.Path, Changes: t.Changes}
			if part.Origin == "" {
				part.Origin = s.cfg.Site
			}
			t.Changes, pendingBytes = nil, 0
			if !emit(part) {
				return Position{}, errClosed
			}
		}
	}
}

func commitTime(ev Event) time.Time {
	if !ev.WallTime.IsZero() {
		return ev.WallTime
	}
	if ev.ClusterTime.T != 0 {
		return time.Unix(int64(ev.ClusterTime.T), 0).UTC()
	}
	return time.Now()
}

// finish gives a Txn without an origin marker the source's site, and
// turns a Txn without data (only Hamal's own documents) into a heartbeat.
func (s *Source) finish(t *event.Txn) *event.Txn {
	if t.Origin == "" {
		t.Origin = s.cfg.Site
	}
	if len(t.Changes) == 0 {
		t.Kind = event.KindHeartbeat
		t.Changes = nil
	}
	return t
}

// Next returns the next Txn in stream order.
func (s *Source) Next(ctx context.Context) (*event.Txn, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, errClosed
	case it := <-s.out:
		if it.err != nil {
			return nil, it.err
		}
		if p, err := DecodePosition(it.txn.Pos); err == nil {
			s.mu.Lock()
			s.pos = p
			s.mu.Unlock()
		}
		return it.txn, nil
	}
}

// Position returns the position after the last Txn Next returned
// (pipeline.Positioner).
func (s *Source) Position() event.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pos.Token) == 0 && s.pos.ClusterTime == "" {
		return nil
	}
	return EncodePosition(s.pos)
}

// LastContact is when the server last answered (pipeline.Contacter).
func (s *Source) LastContact() time.Time { return time.Unix(0, s.contact.Load()) }

// Close stops reading; a blocked Next returns an error.
func (s *Source) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		if s.closer != nil {
			s.closer()
		}
	})
	return nil
}
