package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/mysqlconn"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/source"
	"github.com/hamal-replication/hamal/tlslink"
)

var _ source.Source = (*Reader)(nil)

// ErrClosed is returned by Next once Close has been called.
var ErrClosed = errors.New("mysql source: reader closed")

// ErrPositionPurged is matched (errors.Is) by the fatal error Open or Next
// returns when the source no longer has the binlog a start or resume
// position needs (see PositionError).
var ErrPositionPurged = errors.New("source has purged the binlog needed to resume")

const (
	heartbeatPeriod = time.Second
	// readTimeout notices a silently dead connection: with heartbeats every
	// second, ten quiet seconds mean the link is gone. The watchdog (see
	// watch) enforces it; go-mysql's own ReadTimeout would re-arm a socket
	// deadline for every packet, a timer update that cost more CPU than
	// the rest of reading a small event.
	readTimeout = 10 * time.Second
	// contactEvery is how many events may pass between two refreshes of
	// LastContact while events stream (every returned Txn and every
	// heartbeat refresh it too): a clock read per event is measurable.
	contactEvery = 256
	// eventCache bounds how many decoded events go-mysql reads ahead of
	// Next. Together with the transaction being assembled it is all this
	// reader buffers.
	eventCache = 128
)

// Reader streams committed transactions from a MySQL or MariaDB binlog.
// Next is called from one goroutine; Close may be called from any.
type Reader struct {
	cfg    Config
	log    *slog.Logger
	flavor string
	// version decides which executable comments of the binlog's
	// statements the server ran (executableText).
	version serverVersion
	filter  *filter

	syncer   *replication.BinlogSyncer
	streamer *replication.BinlogStreamer

	metaMu sync.Mutex
	meta   *client.Conn // information_schema lookups; reconnected lazily

	closeOnce   sync.Once
	closed      chan struct{}
	lastContact atomic.Int64 // unix nanoseconds

	// The watchdog's view of Next: events received so far, and whether
	// Next is running (so a consumer that stops calling Next is not
	// mistaken for a dead source). stalled is set when it gave up.
	received    atomic.Uint64
	inNext      atomic.Bool
	stalled     atomic.Bool
	readTimeout time.Duration // readTimeout; tests shorten it

	dialer   *mysqlconn.Dialer // the syncer's, over dial
	connMu   sync.Mutex
	dumpConn net.Conn // the binlog dump's connection, once dialed

	// Position state after the last complete event group.
	gtid     gomysql.GTIDSet // nil when positions carry no GTID
	gtidText string          // gtid rendered; valid unless gtidDirty
	// gtidDirty is set whenever gtid changes: the set is rendered once per
	// group, not once per position taken.
	gtidDirty bool
	file      string
	pos       uint32
	startPos  Position // where the dump started, for error messages
	resumed   bool     // startPos is the checkpoint, not Config.Start
	lastSent  Position // position of the last Txn returned
	err       error    // sticky fatal error

	grp        group
	inPayload  bool // handling the events of a TransactionPayloadEvent
	tables     map[uint64]*tableEntry
	uniqueKeys map[string][]indexDef
}

// Open runs the preflight, resolves the start position and starts the
// binlog dump. A non-nil resume (the checkpoint) always wins over
// cfg.Start. Preflight problems give a *PreflightError (fatal).
func Open(ctx context.Context, cfg Config, resume event.Position) (*Reader, error) {
	log := cfgLogger(cfg).With("component", "source/mysql", "addr", cfg.Addr)
	var resumePos *Position
	if resume != nil {
		p, err := DecodePosition(resume)
		if err != nil {
			return nil, fmt.Errorf("open mysql source: resume position: %w", err)
		}
		resumePos = &p
	}
	rep, conn, st, err := preflight(ctx, cfg, resumePos != nil)
	if err != nil {
		return nil, fmt.Errorf("open mysql source %s: %w", cfg.Addr, err)
	}
	if len(rep.Problems) > 0 {
		if conn != nil {
			conn.Close()
		}
		perr := &PreflightError{Addr: cfg.Addr, Problems: rep.Problems}
		if errors.Is(perr, ErrUnreachable) {
			return nil, retry.Transient(perr) // an outage: the channel retries
		}
		return nil, perr
	}
	f, _ := newFilter(cfg.Tables, cfg.Exclude, cfg.HamalSchema) // validated by preflight
	r := &Reader{
		cfg:         cfg,
		log:         log,
		flavor:      rep.Flavor,
		version:     parseServerVersion(rep.Flavor, rep.Version),
		filter:      f,
		meta:        conn,
		closed:      make(chan struct{}),
		tables:      make(map[uint64]*tableEntry),
		uniqueKeys:  make(map[string][]indexDef),
		readTimeout: readTimeout,
	}
	if cfg.readTimeout > 0 {
		r.readTimeout = cfg.readTimeout
	}
	r.lastContact.Store(time.Now().UnixNano())
	if err := r.start(conn, st, resumePos); err != nil {
		r.Close()
		return nil, fmt.Errorf("open mysql source %s: %w", cfg.Addr, err)
	}
	return r, nil
}

// Flavor returns "mysql" or "mariadb".
func (r *Reader) Flavor() string { return r.flavor }

// LastContact returns when the source last sent anything, binlog
// heartbeats included.
func (r *Reader) LastContact() time.Time { return time.Unix(0, r.lastContact.Load()) }

// Close stops the dump and releases the connections. It is safe to call
// more than once and while Next is blocked; Next then returns ErrClosed.
func (r *Reader) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		if r.syncer != nil {
			r.syncer.Close()
		}
		r.metaMu.Lock()
		if r.meta != nil {
			r.meta.Close()
			r.meta = nil
		}
		r.metaMu.Unlock()
	})
	return nil
}

// Next returns the next committed transaction. See source.Source.
func (r *Reader) Next(ctx context.Context) (*event.Txn, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.inNext.Store(true)
	defer r.inNext.Store(false)
	for {
		select {
		case <-r.closed:
			return nil, ErrClosed
		default:
		}
		ev, err := r.streamer.GetEvent(ctx)
		if err != nil {
			select {
			case <-r.closed:
				return nil, ErrClosed
			default:
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if r.stalled.Load() {
				r.err = retry.Transient(fmt.Errorf("read binlog after %s: nothing from the source for %s, not even a heartbeat: "+
					"the connection is presumed dead; reconnecting", r.lastSent, r.readTimeout))
				return nil, r.err // this Reader is done; the channel opens a new one
			}
			err = r.classifyStreamError(fmt.Errorf("read binlog after %s: %w", r.lastSent, err))
			if !retry.IsTransient(err) {
				r.err = err
			}
			return nil, err
		}
		n := r.received.Add(1)
		if _, hb := ev.Event.(*replication.HeartbeatEvent); hb || n%contactEvery == 0 {
			r.lastContact.Store(time.Now().UnixNano())
		}
		txn, err := r.handle(ev, 0)
		if err != nil {
			if !retry.IsTransient(err) {
				r.err = err
			}
			return nil, err
		}
		if txn != nil {
			now := time.Now()
			r.lastContact.Store(now.UnixNano())
			txn.CommitTime = dateCommit(txn.CommitTime, now)
			return txn, nil
		}
	}
}

// dateCommit refines a binlog commit time, which the binlog stamps in
// whole seconds, with the moment its Txn arrived: the commit happened
// within that second and before it arrived, so the latest moment both
// allow, min(arrival, end of the second), is the estimate. A caught-up
// reader (the transaction arrives milliseconds after its commit) then
// shows lag in milliseconds instead of a sawtooth of up to a second; a
// lagging one stays within a second of the truth, as before. The whole
// second is kept: the estimate never leaves the binlog's second. Times
// that are not whole seconds (heartbeat Txns, dated on arrival) are
// returned as they are.
func dateCommit(stamp, arrived time.Time) time.Time {
	if stamp.Nanosecond() != 0 || !arrived.After(stamp) {
		return stamp // a clock behind the source's: keep its stamp
	}
	if end := stamp.Add(time.Second - time.Microsecond); arrived.After(end) {
		return end
	}
	return arrived
}

// classifyStreamError marks network failures transient and turns ERROR
// 1236 into a PurgedError (or a server_id clash).
func (r *Reader) classifyStreamError(err error) error {
	if errors.Is(err, mysqlconn.ErrPasswordExposed) || errors.Is(err, tlslink.ErrTLS) {
		return err // refused as configured: fatal, the message says what to fix
	}
	var myErr *gomysql.MyError
	if errors.As(err, &myErr) {
		switch myErr.Code {
		case gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG:
			if strings.Contains(strings.ToLower(myErr.Message), "server_id") ||
				strings.Contains(strings.ToLower(myErr.Message), "server_uuid") {
				return fmt.Errorf("another replica uses source.server_id %d: %w", r.cfg.ServerID, err)
			}
			return r.refusedPosition(myErr)
		case gomysql.ER_SERVER_SHUTDOWN, gomysql.ER_NET_READ_ERROR, gomysql.ER_NET_READ_INTERRUPTED,
			gomysql.ER_MASTER_NET_READ, gomysql.ER_QUERY_INTERRUPTED, 1927 /* ER_CONNECTION_KILLED */, 2013, 2006:
			return retry.Transient(err)
		}
		return err
	}
	if errors.Is(err, replication.ErrSyncClosed) || errors.Is(err, replication.ErrNeedSyncAgain) || isNetworkError(err) {
		return retry.Transient(err)
	}
	return err
}

// position returns the position after the last complete group.
func (r *Reader) position() Position {
	p := Position{File: r.file, Pos: r.pos}
	if r.gtid != nil {
		if r.gtidDirty {
			r.gtidText, r.gtidDirty = formatGTIDSet(r.gtid), false
		}
		p.GTID = r.gtidText
	}
	return p
}

// quoteString renders s as a SQL string literal.
func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

func formatUUID(b []byte) string {
	if len(b) != 16 {
		return fmt.Sprintf("%x", b)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// minLevelHandler drops records below min; go-mysql logs every connect
// and rotation at Info. It also drops go-mysql's "kill connection" error
// for ERROR 1094 (unknown thread): closing a syncer KILLs the dump's
// connection, which is already gone when the server refused the dump, so
// that record only says the connection ended as it should have.
type minLevelHandler struct {
	min  slog.Level
	next slog.Handler
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.next.Enabled(ctx, l)
}
func (h minLevelHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == "kill connection" && killOfGoneThread(rec) {
		return nil
	}
	return h.next.Handle(ctx, rec)
}

// killOfGoneThread reports whether a "kill connection" record carries
// ERROR 1094 (ER_NO_SUCH_THREAD).
func killOfGoneThread(rec slog.Record) bool {
	gone := false
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key != "error" {
			return true
		}
		if err, ok := a.Value.Any().(error); ok {
			var me *gomysql.MyError
			gone = errors.As(err, &me) && me.Code == gomysql.ER_NO_SUCH_THREAD ||
				gomysql.ErrorCode(err.Error()) == gomysql.ER_NO_SUCH_THREAD
		}
		return false
	})
	return gone
}
func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{min: h.min, next: h.next.WithAttrs(attrs)}
}
func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{min: h.min, next: h.next.WithGroup(name)}
}

// Position returns the position after the last Txn Next returned, or the
// resolved start position before the first: "current" resolved to a real
// file:pos and GTID set. The channel persists it at first start, so a crash
// before the first Txn does not move "current" forward. Call it from the
// goroutine that calls Next.
func (r *Reader) Position() event.Position { return EncodePosition(r.lastSent) }
