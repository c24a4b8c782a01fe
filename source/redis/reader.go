package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// Config configures the Redis source.
type Config struct {
	Addr     string
	User     string // ACL user; empty: the default user
	Password string
	// Site names the site this source's master belongs to. Txns written
	// locally on the master (no origin marker) carry it as their Origin.
	Site string
	// Channel names the channel, for the replica's name in CLIENT LIST.
	Channel string
	// Filter selects keys and databases and maps databases; nil
	// replicates everything as it is.
	Filter *Filter
	// TLS, when set, encrypts every connection to the master (the PSYNC
	// link and the COMMAND/INFO client); the master must take TLS.
	TLS *tls.Config
	// MaxBulkBytes bounds one string from the master (a key, a value, an
	// element), in the command stream and in the RDB; a longer one stops
	// the channel (ErrTooLarge). 0: DefaultMaxBulkBytes.
	MaxBulkBytes int64
	DialTimeout  time.Duration
	Logger       *slog.Logger
}

// DefaultMaxBulkBytes is MaxBulkBytes' default: Redis's own
// proto-max-bulk-len.
const DefaultMaxBulkBytes = 512 << 20

// ErrUnknownReplID is returned by Open when the checkpoint names a
// replication id the master does not know: the checkpoint belongs to
// another master, or the master lost its data.
var ErrUnknownReplID = errors.New("checkpoint is from another master")

// Source poses as a Redis replica and emits the master's writes as Txns.
type Source struct {
	cfg  Config
	log  *slog.Logger
	cmds *Commands
	conn net.Conn
	rd   *respReader

	writeMu sync.Mutex // guards writes to conn (ACKs)
	out     chan []item
	pending []item // read, not yet handed to Next (the reader's own)
	cur     []item // handed over (Next's own); cur[next:] not yet returned
	next    int
	spent   chan []item // slices Next emptied, for the reader to reuse
	// tagSlot is the slot-tag room of the oneCommand block being filled
	// (the reader's own), nil once used.
	tagSlot [][]byte
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup

	fullSync bool
	start    Position // position at connect (after the reply to PSYNC)

	mu      sync.Mutex
	pos     Position // after the last Txn returned by Next
	contact atomic.Int64
	acked   atomic.Int64 // stream offset to acknowledge; 0 before streaming
}

// item is one Txn with its typed position, or the error that ended the
// stream. The reader hands items to Next in slices (see flush), so the
// reader and the channel's goroutine meet once per slice, not per Txn, and
// Next never decodes a position.
type item struct {
	txn *event.Txn
	pos Position
	err error
}

// maxPending is the most items handed to Next in one slice.
const maxPending = 256

// Open connects to the master, performs the replica handshake and PSYNC
// from resume (nil: a full sync), and starts reading.
func Open(ctx context.Context, cfg Config, resume event.Position) (*Source, error) {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBulkBytes <= 0 {
		cfg.MaxBulkBytes = DefaultMaxBulkBytes
	}
	var from *Position
	if resume != nil {
		p, err := DecodePosition(resume)
		if err != nil {
			return nil, err
		}
		from = &p
	}
	// 30 s, not go-redis's 3 s: COMMAND's reply is large and a busy source
	// (or a stalled host) can take seconds; ctx still bounds the wait.
	client := NewClient(cfg)
	defer client.Close()
	cmds, err := LoadCommands(ctx, client)
	if err != nil {
		return nil, classify(cfg, err)
	}
	if from != nil && !from.Snapshot {
		info, err := client.Info(ctx, "replication").Result()
		if err != nil {
			return nil, classify(cfg, fmt.Errorf("INFO replication: %w", err))
		}
		id1, id2 := infoField(info, "master_replid"), infoField(info, "master_replid2")
		if from.ReplID != id1 && from.ReplID != id2 {
			return nil, fmt.Errorf("source redis %s: %w: the checkpoint names replication id %s, the master knows %s and %s; "+
				"if this is the right master and it lost its data, delete the channel's checkpoint to start over with a full sync",
				cfg.Addr, ErrUnknownReplID, from.ReplID, id1, id2)
		}
	}
	s := &Source{cfg: cfg, log: cfg.Logger, cmds: cmds, out: make(chan []item, 8), spent: make(chan []item, 10), stop: make(chan struct{})}
	if err := s.connect(ctx, from); err != nil {
		return nil, err
	}
	s.contact.Store(time.Now().UnixNano())
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// run reads the RDB (after a full sync) and then the command stream,
// handing Txns to Next until the connection fails or Close is called.
func (s *Source) run() {
	defer s.wg.Done()
	err := s.stream()
	if err != nil && !errors.Is(err, errClosed) {
		s.pending = append(s.pending, item{err: err})
	}
	s.flush()
}

// emit queues t at p for Next; a slice is handed over when it is full or
// when the reader is about to wait for the master (nothing buffered), so
// batching adds no latency. It reports false once the source is closed.
func (s *Source) emit(t *event.Txn, p Position) bool {
	s.pending = append(s.pending, item{txn: t, pos: p})
	if len(s.pending) >= maxPending || s.rd.br.Buffered() == 0 {
		return s.flush()
	}
	return true
}

// flush hands the queued items to Next.
func (s *Source) flush() bool {
	if len(s.pending) == 0 {
		return true
	}
	select {
	case s.out <- s.pending:
		select {
		case s.pending = <-s.spent:
		default:
			s.pending = make([]item, 0, maxPending)
		}
		return true
	case <-s.stop:
		return false
	}
}

var errClosed = errors.New("redis source closed")

func (s *Source) ackLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.ack(); err != nil {
				return // the reader sees the broken connection
			}
		}
	}
}

// Next returns the next Txn in stream order. It is called by one
// goroutine at a time.
func (s *Source) Next(ctx context.Context) (*event.Txn, error) {
	if s.next == len(s.cur) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stop:
			return nil, errClosed
		case s.cur = <-s.out:
			s.next = 0
		}
	}
	it := s.cur[s.next]
	s.cur[s.next] = item{}
	s.next++
	if s.next == len(s.cur) {
		// Emptied: the reader may fill it again.
		select {
		case s.spent <- s.cur[:0]:
		default:
		}
		s.cur, s.next = nil, 0
	}
	if it.err != nil {
		return nil, it.err
	}
	s.mu.Lock()
	s.pos = it.pos
	s.mu.Unlock()
	return it.txn, nil
}

// Position returns the position after the last Txn Next returned, or the
// start position before the first (pipeline.Positioner).
func (s *Source) Position() event.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return EncodePosition(s.pos)
}

// LastContact is when the master last sent anything (pipeline.Contacter).
func (s *Source) LastContact() time.Time { return time.Unix(0, s.contact.Load()) }

// FullSync reports whether this connection began with a full sync.
func (s *Source) FullSync() bool { return s.fullSync }

// Close closes the connection; a blocked Next returns an error.
func (s *Source) Close() error {
	s.once.Do(func() {
		close(s.stop)
		s.conn.Close()
	})
	s.wg.Wait()
	return nil
}
