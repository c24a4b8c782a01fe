package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/source"
)

var _ source.Source = (*Reader)(nil)

// ErrClosed is returned by Next once Close has been called.
var ErrClosed = errors.New("mysql source: reader closed")

// ErrPositionPurged is matched (errors.Is) by the fatal error Next returns
// when the source no longer has the binlog a start or resume position
// needs (ERROR 1236 from the binlog dump).
var ErrPositionPurged = errors.New("source has purged the binlog needed to resume")

// PurgedError is the fatal error for a start/resume position the source can
// no longer serve.
type PurgedError struct {
	Pos   Position
	Cause error
}

func (e *PurgedError) Error() string {
	return fmt.Sprintf("source has purged the binlog needed to resume at %s: %v; "+
		"re-seed the target and start at `current`, or restore the binlogs", e.Pos, e.Cause)
}

// Is matches ErrPositionPurged.
func (e *PurgedError) Is(target error) bool { return target == ErrPositionPurged }

// Unwrap returns the server's error.
func (e *PurgedError) Unwrap() error { return e.Cause }

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
	filter *filter

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
	lastSent  Position // position of the last Txn returned
	err       error    // sticky fatal error

	grp        group
	inPayload  bool // handling the events of a TransactionPayloadEvent
	tables     map[uint64]*tableEntry
	uniqueKeys map[string][]indexDef
}

// group is the event group (transaction) being assembled.
type group struct {
	started    bool // a GTID event or BEGIN opened it
	begun      bool // BEGIN seen: ends with XID or COMMIT
	standalone bool // MariaDB FL_STANDALONE: the next statement ends it
	mariaGTID  *gomysql.MariadbGTID
	mysqlGTID  string // "uuid:gno"
	changes    []event.Change
	// bytes counts the binlog bytes of the row events behind changes;
	// chunked tells that Partial Txns of this group were returned.
	bytes    int
	chunked  bool
	origin   string
	path     []string // from the origin marker row, origin first
	startPos Position // position before the group

	heartbeat time.Time // newest hamal.heartbeat row of the group
}

type tableEntry struct {
	tm       *replication.TableMapEvent
	table    *event.Table // nil when filtered
	filtered bool
	// Columns "origin" and "path" of the origin marker table, else -1.
	originCol, pathCol int
	// heartbeatCol is 1 + column "ts" of hamal.heartbeat; 0 for any other
	// table (see heartbeat.go).
	heartbeatCol int
}

type indexDef struct {
	name    string
	columns []string
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

// start resolves the start position and starts the dump.
//
// MariaDB always streams by GTID when a GTID position is known (resume,
// "current", an explicit GTID set). A file:pos start (and "earliest", which
// is the first binlog at offset 4) seeds the GTID position with
// BINLOG_GTID_POS(file, pos), so positions emitted afterwards still carry
// the full GTID state and a later resume uses GTID. MySQL streams by GTID
// when gtid_mode is ON and a GTID set is known, else by file:pos.
func (r *Reader) start(conn *client.Conn, st serverState, resume *Position) error {
	var useGTID bool
	var gtidText string
	switch {
	case resume != nil:
		r.file, r.pos = resume.File, resume.Pos
		if resume.GTID != "" {
			useGTID, gtidText = true, resume.GTID
		}
	default:
		spec, err := parseStart(r.cfg.Start)
		if err != nil {
			return err
		}
		switch spec.kind {
		case "current":
			file, pos, err := masterStatus(conn)
			if err != nil {
				return err
			}
			r.file, r.pos = file, pos
			if r.flavor == FlavorMariaDB {
				useGTID = true
				if gtidText, err = queryString(conn, "SELECT @@GLOBAL.gtid_binlog_pos"); err != nil {
					return fmt.Errorf("read gtid_binlog_pos: %w", err)
				}
			} else if st.gtidMode {
				useGTID = true
				if gtidText, err = queryString(conn, "SELECT @@GLOBAL.gtid_executed"); err != nil {
					return fmt.Errorf("read gtid_executed: %w", err)
				}
			}
		case "earliest":
			res, err := conn.Execute("SHOW BINARY LOGS")
			if err != nil {
				return fmt.Errorf("show binary logs: %w", err)
			}
			if res.RowNumber() == 0 {
				return errors.New("show binary logs: the source lists no binlog")
			}
			r.file, _ = res.GetString(0, 0)
			r.pos = 4
		case "gtid":
			useGTID, gtidText = true, spec.gtid
		case "filepos":
			r.file, r.pos = spec.file, spec.pos
		}
	}
	if !useGTID && r.flavor == FlavorMariaDB && r.file != "" {
		// Seed the GTID state at file:pos. NULL (unknown position) leaves
		// positions file:pos only; a partial GTID state learned from events
		// would be unsafe to resume from.
		res, err := conn.Execute(fmt.Sprintf("SELECT BINLOG_GTID_POS(%s, %d)", quoteString(r.file), r.pos))
		if err == nil && res.RowNumber() == 1 {
			if null, _ := res.IsNull(0, 0); !null {
				g, _ := res.GetString(0, 0)
				if set, perr := gomysql.ParseMariadbGTIDSet(g); perr == nil {
					r.gtid, r.gtidDirty = set, true
				}
			}
		}
		if r.gtid == nil {
			r.log.Warn("cannot map the start file:pos to a GTID position; positions stay file:pos only", "file", r.file, "pos", r.pos)
		}
	}
	if useGTID {
		set, err := gomysql.ParseGTIDSet(r.flavor, strings.TrimSpace(gtidText))
		if err != nil {
			return fmt.Errorf("parse gtid set %q: %w", gtidText, err)
		}
		r.gtid, r.gtidDirty = set, true
	}
	r.startPos = r.position()
	r.lastSent = r.startPos

	host, portText, err := net.SplitHostPort(r.cfg.Addr)
	if err != nil {
		return fmt.Errorf("source.addr %q: %w", r.cfg.Addr, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return fmt.Errorf("source.addr %q: bad port: %w", r.cfg.Addr, err)
	}
	r.syncer = replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID:        r.cfg.ServerID,
		Flavor:          r.flavor,
		Host:            host,
		Port:            uint16(port),
		User:            r.cfg.User,
		Password:        r.cfg.Password,
		Localhost:       "hamal",
		HeartbeatPeriod: heartbeatPeriod,
		// No ReadTimeout: the watchdog does its job (see readTimeout).
		// No GTID set attached to every XID/COMMIT event either: positions
		// are kept here, and the library would clone its set per event.
		DiscardGTIDSet:          true,
		ParseTime:               false,
		UseDecimal:              false,
		TimestampStringLocation: time.UTC,
		// go-mysql's own reconnect resumes from the GTID set *before* the
		// last GTID event it saw and would replay a half-read group into
		// the group being assembled here. Hamal reconnects instead: Next
		// returns a transient error and the engine re-opens at its
		// checkpoint.
		DisableRetrySync:     true,
		MaxReconnectAttempts: 1,
		EventCacheCount:      eventCache,
		Dialer:               r.dial,
		TLSConfig:            r.cfg.TLS,
		Logger:               slog.New(minLevelHandler{min: slog.LevelWarn, next: r.log.Handler()}),
	})
	if useGTID {
		r.log.Info("starting binlog dump", "gtid", r.gtid.String(), "flavor", r.flavor)
		// A copy: for MySQL the syncer updates the set it was given from
		// its own goroutine.
		r.streamer, err = r.syncer.StartSyncGTID(r.gtid.Clone())
	} else {
		r.log.Info("starting binlog dump", "file", r.file, "pos", r.pos, "flavor", r.flavor)
		r.streamer, err = r.syncer.StartSync(gomysql.Position{Name: r.file, Pos: r.pos})
	}
	if err != nil {
		return r.classifyStreamError(fmt.Errorf("start binlog dump at %s: %w", r.startPos, err))
	}
	// The dump is running: from now on the watchdog guards its reads.
	r.connMu.Lock()
	if r.dumpConn != nil {
		_ = r.dumpConn.SetDeadline(time.Time{})
	}
	r.connMu.Unlock()
	go r.watch()
	return nil
}

// dial opens the syncer's connections with a deadline of readTimeout, so
// a handshake or the KILL that Close sends over a dead link cannot hang
// (go-mysql's ReadTimeout, which would bound them, is off). The first
// connection is the dump's; start lifts its deadline once the dump runs.
func (r *Reader) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(r.readTimeout))
	r.connMu.Lock()
	if r.dumpConn == nil {
		r.dumpConn = c
	}
	r.connMu.Unlock()
	return c, nil
}

// watch closes the dump when Next has waited readTimeout without
// receiving anything, not even a binlog heartbeat: the connection is
// silently dead (a peer gone without a FIN, a cut link), and Next then
// returns a transient error so the channel reconnects. It checks counters
// once a second instead of the reader arming a deadline per packet.
func (r *Reader) watch() {
	tick := time.NewTicker(min(time.Second, r.readTimeout/4))
	defer tick.Stop()
	var last uint64
	var since time.Time // when Next was first seen waiting with no event
	for {
		select {
		case <-r.closed:
			return
		case now := <-tick.C:
			n := r.received.Load()
			if n != last || !r.inNext.Load() {
				last, since = n, time.Time{}
				continue
			}
			if since.IsZero() {
				since = now
				continue
			}
			if now.Sub(since) >= r.readTimeout {
				r.stalled.Store(true)
				r.syncer.Close() // GetEvent returns; Next reports the stall
				return
			}
		}
	}
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
	var myErr *gomysql.MyError
	if errors.As(err, &myErr) {
		switch myErr.Code {
		case gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG:
			if strings.Contains(strings.ToLower(myErr.Message), "server_id") ||
				strings.Contains(strings.ToLower(myErr.Message), "server_uuid") {
				return fmt.Errorf("another replica uses source.server_id %d: %w", r.cfg.ServerID, err)
			}
			return &PurgedError{Pos: r.startPos, Cause: myErr}
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

// handle folds one binlog event into the group being assembled and
// returns a Txn when the event ends a group. commitPos overrides the
// header's log position (events inside a MySQL transaction payload).
func (r *Reader) handle(ev *replication.BinlogEvent, commitPos uint32) (*event.Txn, error) {
	h := ev.Header
	if commitPos == 0 {
		commitPos = h.LogPos
	}
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		// The dump starts with a fake rotate (timestamp 0) naming the file;
		// on a GTID start its offset is 4 whatever the real start is, so
		// it only counts when it changes the file.
		file := string(e.NextLogName)
		if h.Timestamp != 0 || file != r.file {
			r.file, r.pos = file, uint32(e.Position)
		}
	case *replication.MariadbGTIDEvent:
		r.beginGroup()
		g := e.GTID
		r.grp.mariaGTID = &g
		r.grp.standalone = e.IsStandalone()
	case *replication.GTIDEvent:
		r.beginGroup()
		if h.EventType == replication.GTID_EVENT {
			r.grp.mysqlGTID = formatUUID(e.SID) + ":" + strconv.FormatInt(e.GNO, 10)
		}
	case *replication.GtidTaggedLogEvent:
		r.beginGroup()
		r.grp.mysqlGTID = formatUUID(e.SID) + ":" + e.Tag.String() + ":" + strconv.FormatInt(e.GNO, 10)
	case *replication.QueryEvent:
		return r.query(h, e, commitPos)
	case *replication.TableMapEvent:
		return nil, r.tableMap(e)
	case *replication.RowsEvent:
		if err := r.rows(h, e); err != nil {
			return nil, err
		}
		return r.chunk(h), nil
	case *replication.XIDEvent:
		return r.commit(h, commitPos), nil
	case *replication.TransactionPayloadEvent:
		// A payload event holds a whole (compressed) transaction that is
		// in memory already: it is not chunked, so it yields one Txn.
		r.inPayload = true
		defer func() { r.inPayload = false }()
		var out *event.Txn
		for _, inner := range e.Events {
			txn, err := r.handle(inner, h.LogPos)
			if err != nil {
				return nil, err
			}
			if txn != nil {
				out = txn
			}
		}
		return out, nil
	case *replication.HeartbeatEvent:
		return r.heartbeat(h, e), nil
	}
	return nil, nil
}

func (r *Reader) beginGroup() {
	if r.grp.started && (len(r.grp.changes) > 0 || r.grp.chunked) {
		// Chunks of it already returned stay applied: the source never
		// committed them, and nothing here can take them back.
		r.log.Warn("binlog group without commit event; dropping its changes", "after", r.lastSent.String(),
			"chunks_already_returned", r.grp.chunked)
	}
	r.grp = group{started: true, startPos: r.position()}
}

// queryKind classifies a QueryEvent's statement.
type queryKind int

const (
	queryDDL      queryKind = iota + 1 // anything that is not below: DDL, GRANT, …
	queryBegin                         // BEGIN, START TRANSACTION, XA START
	queryCommit                        // COMMIT, ROLLBACK, XA PREPARE: ends the group
	queryInGroup                       // SAVEPOINT, ROLLBACK TO, RELEASE, XA END: no effect
	queryDML                           // statement-based DML (binlog_format not ROW for that session)
	queryXAFinish                      // XA COMMIT/ROLLBACK of a prepared transaction
)

func classifyQuery(q string) queryKind {
	s := strings.ToUpper(stripComments(q))
	word := func(w string) bool {
		return s == w || strings.HasPrefix(s, w+" ") || strings.HasPrefix(s, w+"\t") || strings.HasPrefix(s, w+"\n") || strings.HasPrefix(s, w+";")
	}
	switch {
	case word("BEGIN"), word("START TRANSACTION"), word("XA START"), word("XA BEGIN"):
		return queryBegin
	case word("COMMIT"), word("XA PREPARE"):
		return queryCommit
	case word("ROLLBACK TO"), word("SAVEPOINT"), word("RELEASE SAVEPOINT"), word("XA END"):
		return queryInGroup
	case word("ROLLBACK"):
		return queryCommit
	case word("XA COMMIT"), word("XA ROLLBACK"):
		return queryXAFinish
	case word("INSERT"), word("UPDATE"), word("DELETE"), word("REPLACE"), word("LOAD"):
		return queryDML
	}
	return queryDDL
}

func (r *Reader) query(h *replication.EventHeader, e *replication.QueryEvent, commitPos uint32) (*event.Txn, error) {
	stmt := string(e.Query)
	schema := string(e.Schema)
	switch classifyQuery(stmt) {
	case queryBegin:
		if !r.grp.started {
			r.grp = group{started: true, startPos: r.position()}
		}
		r.grp.begun = true
		return nil, nil
	case queryCommit:
		// A ROLLBACK that reaches the binlog ends a group whose
		// non-transactional changes did happen: forward them.
		return r.commit(h, commitPos), nil
	case queryInGroup:
		return nil, nil
	case queryXAFinish:
		return r.commit(h, commitPos), nil
	case queryDML:
		if r.filter.system(schema) {
			if r.grp.begun && !r.grp.standalone {
				return nil, nil
			}
			return r.commit(h, commitPos), nil
		}
		return nil, fmt.Errorf("statement-based DML in the binlog at %s:%d (schema %q): %.200s; "+
			"a session wrote with binlog_format other than ROW: set binlog_format=ROW globally and in my.cnf and restart writers",
			r.file, h.LogPos, schema, stmt)
	}

	// DDL and other standalone statements.
	r.invalidateSchema()
	forward := r.filter.forwardDDL(stmt, schema)
	ddl := &event.DDL{Schema: schema, Statement: stmt}
	// A DDL applied by a Hamal sink with a loop guard names its path in a
	// leading comment (a DDL has no transaction for a marker row).
	ddlPath, _ := loopguard.ParseComment(stmt)
	endsGroup := !r.grp.started || r.grp.standalone ||
		(r.flavor == FlavorMySQL && !r.grp.begun && !strings.HasSuffix(strings.ToUpper(strings.TrimSpace(stmt)), "START TRANSACTION"))
	if r.grp.begun && !r.grp.standalone {
		r.log.Warn("non-transactional statement inside a transaction ignored", "statement", truncate(stmt, 200), "after", r.lastSent.String())
		return nil, nil
	}
	if !endsGroup {
		// A DDL that opens a group with rows to follow (CREATE TABLE …
		// SELECT). It is emitted now with the position *before* the group,
		// so that a resume there replays the DDL (sinks tolerate that)
		// rather than losing the rows.
		if !forward {
			return nil, nil
		}
		return &event.Txn{
			Pos:        EncodePosition(r.grp.startPos),
			CommitTime: time.Unix(int64(h.Timestamp), 0),
			Kind:       event.KindDDL,
			DDL:        ddl,
			Path:       ddlPath,
		}, nil
	}
	txn := r.commit(h, commitPos)
	if forward {
		txn.Kind = event.KindDDL
		txn.DDL = ddl
		txn.Path = ddlPath
	}
	return txn, nil
}

// commit ends the current group at commitPos and returns its Txn: DML
// when it kept changes, else a Heartbeat that only moves the position.
func (r *Reader) commit(h *replication.EventHeader, commitPos uint32) *event.Txn {
	grp := r.grp
	r.grp = group{}
	if r.gtid != nil {
		r.gtidDirty = true
		switch set := r.gtid.(type) {
		case *gomysql.MariadbGTIDSet:
			if grp.mariaGTID != nil {
				if err := set.AddSet(grp.mariaGTID); err != nil {
					r.log.Warn("cannot add gtid to position", "gtid", grp.mariaGTID.String(), "error", err)
				}
			}
		case *gomysql.MysqlGTIDSet:
			if grp.mysqlGTID != "" {
				if err := set.Update(grp.mysqlGTID); err != nil {
					r.log.Warn("cannot add gtid to position", "gtid", grp.mysqlGTID, "error", err)
				}
			}
		}
	}
	if commitPos > 0 {
		r.pos = commitPos
	}
	pos := r.position()
	r.lastSent = pos
	txn := &event.Txn{
		Pos:        EncodePosition(pos),
		CommitTime: time.Unix(int64(h.Timestamp), 0),
		Origin:     grp.origin,
		Path:       grp.path,
		Kind:       event.KindHeartbeat,
		Heartbeat:  grp.heartbeat,
	}
	if len(grp.changes) > 0 {
		txn.Kind = event.KindDML
		txn.Changes = grp.changes
	}
	return txn
}

// textAt returns row[i] as text ("" when absent or not text).
func textAt(row []any, i int) string {
	if i < 0 || i >= len(row) {
		return ""
	}
	switch v := row[i].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// heartbeat handles a binlog heartbeat: sent by the source only while the
// dump waits at the end of the binlog, so its log position is an event
// boundary after everything received. It yields a Heartbeat Txn only when
// the position moved since the last Txn (rotation, skipped events).
func (r *Reader) heartbeat(h *replication.EventHeader, e *replication.HeartbeatEvent) *event.Txn {
	if r.grp.started {
		return nil
	}
	if e.Filename != "" && h.LogPos > 0 && (r.file == "" || e.Filename == r.file) {
		r.file, r.pos = e.Filename, h.LogPos
	}
	pos := r.position()
	if pos == r.lastSent {
		return nil
	}
	r.lastSent = pos
	return &event.Txn{Pos: EncodePosition(pos), CommitTime: time.Now(), Kind: event.KindHeartbeat}
}

// invalidateSchema drops cached table metadata and unique keys after a
// DDL, so the next row event re-reads information_schema.
func (r *Reader) invalidateSchema() {
	clear(r.tables)
	clear(r.uniqueKeys)
}

func (r *Reader) tableMap(e *replication.TableMapEvent) error {
	if ent := r.tables[e.TableID]; ent != nil && sameTableMap(ent.tm, e) {
		return nil
	}
	schema, name := string(e.Schema), string(e.Table)
	ent := &tableEntry{tm: e, originCol: -1, pathCol: -1}
	if !r.filter.matchTable(schema, name) {
		ent.filtered = true
		if strings.ToLower(schema) == r.filter.hamal && name == "origin_marker" {
			for i, c := range e.ColumnNameString() {
				switch c {
				case "origin":
					ent.originCol = i
				case "path":
					ent.pathCol = i
				}
			}
		}
		noteHeartbeatTable(ent, r.filter.hamal, schema, name)
		r.tables[e.TableID] = ent
		return nil
	}
	tbl, err := r.buildTable(e)
	if err != nil {
		return err
	}
	ent.table = tbl
	r.tables[e.TableID] = ent
	return nil
}

// buildTable turns a table map into an immutable event.Table.
func (r *Reader) buildTable(e *replication.TableMapEvent) (*event.Table, error) {
	schema, name := string(e.Schema), string(e.Table)
	names := e.ColumnNameString()
	if len(names) != int(e.ColumnCount) {
		return nil, fmt.Errorf("table %s.%s: the binlog carries no column names (binlog_row_metadata is not FULL when it was written); "+
			"SET GLOBAL binlog_row_metadata=FULL and binlog_row_metadata=FULL in my.cnf, restart writers, then re-seed from a position written with it",
			schema, name)
	}
	unsigned := e.UnsignedMap()
	collations := e.CollationMap()
	tbl := &event.Table{Schema: schema, Name: name, Columns: make([]event.Column, e.ColumnCount)}
	for i := range tbl.Columns {
		typ := e.ColumnType[i]
		if typ == gomysql.MYSQL_TYPE_STRING {
			if real := byte(e.ColumnMeta[i] >> 8); real == gomysql.MYSQL_TYPE_ENUM || real == gomysql.MYSQL_TYPE_SET {
				typ = real
			}
		}
		_, nullable := e.Nullable(i)
		tbl.Columns[i] = event.Column{
			Name:     names[i],
			Type:     typ,
			Unsigned: unsigned[i],
			Binary:   collations[i] == 63 || typ == gomysql.MYSQL_TYPE_GEOMETRY,
			Nullable: nullable,
		}
	}
	for _, c := range e.PrimaryKey {
		tbl.PrimaryKey = append(tbl.PrimaryKey, int(c))
	}
	defs, err := r.loadUniqueKeys(schema, name)
	if err != nil {
		return nil, err
	}
	index := make(map[string]int, len(names))
	for i, n := range names {
		index[strings.ToLower(n)] = i
	}
defs:
	for _, d := range defs {
		uk := event.UniqueKey{Name: d.name}
		for _, c := range d.columns {
			i, ok := index[strings.ToLower(c)]
			if !ok {
				// The table changed since this event was written;
				// information_schema only knows the current shape.
				r.log.Warn("unique key column not in binlog table map; key ignored", "table", schema+"."+name, "key", d.name, "column", c)
				continue defs
			}
			uk.Columns = append(uk.Columns, i)
		}
		tbl.UniqueKeys = append(tbl.UniqueKeys, uk)
	}
	return tbl, nil
}

// loadUniqueKeys reads the table's unique keys other than the primary key
// from information_schema, cached until the next DDL. Prefix indexes are
// left out: a conflict key over the full value would not match the
// index's notion of equality.
func (r *Reader) loadUniqueKeys(schema, name string) ([]indexDef, error) {
	key := schema + "." + name
	if defs, ok := r.uniqueKeys[key]; ok {
		return defs, nil
	}
	r.metaMu.Lock()
	defer r.metaMu.Unlock()
	select {
	case <-r.closed:
		return nil, ErrClosed
	default:
	}
	q := fmt.Sprintf(`SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY'
		ORDER BY INDEX_NAME, SEQ_IN_INDEX`, quoteString(schema), quoteString(name))
	var res *gomysql.Result
	var err error
	// Two attempts: the idle metadata connection may have been closed by
	// the server (wait_timeout) since the last DDL.
	for attempt := 0; attempt < 2; attempt++ {
		if r.meta == nil {
			ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
			conn, cerr := connect(ctx, r.cfg)
			cancel()
			if cerr != nil {
				return nil, retry.Transient(fmt.Errorf("connect for table metadata: %w", cerr))
			}
			r.meta = conn
		}
		res, err = r.meta.Execute(q)
		if err == nil {
			break
		}
		var myErr *gomysql.MyError
		if errors.As(err, &myErr) {
			return nil, fmt.Errorf("read unique keys of %s: %w", key, err)
		}
		r.meta.Close()
		r.meta = nil
	}
	if err != nil {
		return nil, retry.Transient(fmt.Errorf("read unique keys of %s: %w", key, err))
	}
	var defs []indexDef
	prefix := map[string]bool{}
	for i := 0; i < res.RowNumber(); i++ {
		idx, _ := res.GetString(i, 0)
		col, _ := res.GetString(i, 1)
		if null, _ := res.IsNull(i, 2); !null {
			prefix[idx] = true
		}
		if len(defs) == 0 || defs[len(defs)-1].name != idx {
			defs = append(defs, indexDef{name: idx})
		}
		defs[len(defs)-1].columns = append(defs[len(defs)-1].columns, col)
	}
	kept := defs[:0]
	for _, d := range defs {
		if !prefix[d.name] {
			kept = append(kept, d)
		}
	}
	r.uniqueKeys[key] = kept
	return kept, nil
}

func (r *Reader) rows(h *replication.EventHeader, e *replication.RowsEvent) error {
	ent := r.tables[e.TableID]
	if ent == nil {
		return fmt.Errorf("rows event at %s:%d for table id %d without a table map", r.file, h.LogPos, e.TableID)
	}
	if !r.grp.started {
		r.grp = group{started: true, startPos: r.position()}
	}
	if ent.filtered {
		r.noteHeartbeatRows(ent, e)
		if ent.originCol >= 0 && e.Type() != replication.EnumRowsEventTypeDelete && len(e.Rows) > 0 {
			// The after-image of the last row: the marker as this
			// transaction left it.
			row := e.Rows[len(e.Rows)-1]
			r.grp.origin = textAt(row, ent.originCol)
			r.grp.path = loopguard.ParsePath(textAt(row, ent.pathCol))
		}
		return nil
	}
	tbl := ent.table
	if h.EventType == replication.PARTIAL_UPDATE_ROWS_EVENT {
		return fmt.Errorf("table %s: partial JSON update in the binlog; SET GLOBAL binlog_row_value_options='' and restart writers", tbl.Namespace())
	}
	for _, skipped := range e.SkippedColumns {
		if len(skipped) > 0 {
			return fmt.Errorf("table %s: row image without all columns at %s:%d (a session wrote with binlog_row_image other than FULL); "+
				"SET GLOBAL binlog_row_image=FULL and in my.cnf, restart writers", tbl.Namespace(), r.file, h.LogPos)
		}
	}
	for _, row := range e.Rows {
		if len(row) != len(tbl.Columns) {
			return fmt.Errorf("table %s: row has %d values for %d columns at %s:%d", tbl.Namespace(), len(row), len(tbl.Columns), r.file, h.LogPos)
		}
	}
	ns := tbl.Namespace()
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for _, row := range e.Rows {
			r.grp.changes = append(r.grp.changes, event.Change{Op: event.OpInsert, Namespace: ns, Table: tbl, After: row})
		}
	case replication.EnumRowsEventTypeDelete:
		for _, row := range e.Rows {
			r.grp.changes = append(r.grp.changes, event.Change{Op: event.OpDelete, Namespace: ns, Table: tbl, Before: row})
		}
	case replication.EnumRowsEventTypeUpdate:
		if len(e.Rows)%2 != 0 {
			return fmt.Errorf("table %s: update event with an odd number of row images at %s:%d", ns, r.file, h.LogPos)
		}
		for i := 0; i < len(e.Rows); i += 2 {
			r.grp.changes = append(r.grp.changes, event.Change{Op: event.OpUpdate, Namespace: ns, Table: tbl, Before: e.Rows[i], After: e.Rows[i+1]})
		}
	default:
		return fmt.Errorf("table %s: unknown rows event %s at %s:%d", ns, h.EventType, r.file, h.LogPos)
	}
	return nil
}

// chunk returns the changes of the group read so far as a Partial Txn
// once they reach the chunk size, so a huge transaction is never held
// whole (guarantee 4). Its Pos is the position before the group: a
// checkpoint at a chunk resumes at the transaction's start.
func (r *Reader) chunk(h *replication.EventHeader) *event.Txn {
	r.grp.bytes += int(h.EventSize)
	rows, size := r.cfg.ChunkRows, r.cfg.ChunkBytes
	if rows <= 0 {
		rows = defaultChunkRows
	}
	if size <= 0 {
		size = defaultChunkBytes
	}
	if r.inPayload || len(r.grp.changes) == 0 || (len(r.grp.changes) < rows && r.grp.bytes < size) {
		return nil
	}
	txn := &event.Txn{
		Pos:        EncodePosition(r.grp.startPos),
		CommitTime: time.Unix(int64(h.Timestamp), 0),
		Origin:     r.grp.origin,
		Path:       r.grp.path,
		Kind:       event.KindDML,
		Changes:    r.grp.changes,
		Partial:    true,
	}
	r.grp.changes, r.grp.bytes, r.grp.chunked = nil, 0, true
	return txn
}

// sameTableMap reports whether two table maps describe the same table
// shape, so the event.Table built for the first can be reused.
func sameTableMap(a, b *replication.TableMapEvent) bool {
	if a.TableID != b.TableID || !bytes.Equal(a.Schema, b.Schema) || !bytes.Equal(a.Table, b.Table) ||
		a.ColumnCount != b.ColumnCount || !bytes.Equal(a.ColumnType, b.ColumnType) ||
		!bytes.Equal(a.NullBitmap, b.NullBitmap) || !bytes.Equal(a.SignednessBitmap, b.SignednessBitmap) ||
		len(a.ColumnMeta) != len(b.ColumnMeta) || len(a.ColumnName) != len(b.ColumnName) ||
		len(a.PrimaryKey) != len(b.PrimaryKey) || len(a.DefaultCharset) != len(b.DefaultCharset) ||
		len(a.ColumnCharset) != len(b.ColumnCharset) {
		return false
	}
	for i := range a.ColumnMeta {
		if a.ColumnMeta[i] != b.ColumnMeta[i] {
			return false
		}
	}
	for i := range a.ColumnName {
		if !bytes.Equal(a.ColumnName[i], b.ColumnName[i]) {
			return false
		}
	}
	for i := range a.PrimaryKey {
		if a.PrimaryKey[i] != b.PrimaryKey[i] {
			return false
		}
	}
	for i := range a.DefaultCharset {
		if a.DefaultCharset[i] != b.DefaultCharset[i] {
			return false
		}
	}
	for i := range a.ColumnCharset {
		if a.ColumnCharset[i] != b.ColumnCharset[i] {
			return false
		}
	}
	return true
}

func masterStatus(conn *client.Conn) (string, uint32, error) {
	res, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		var err2 error
		if res, err2 = conn.Execute("SHOW BINARY LOG STATUS"); err2 != nil {
			return "", 0, fmt.Errorf("show master status: %w", err)
		}
	}
	if res.RowNumber() == 0 {
		return "", 0, errors.New("show master status: empty (is log_bin on, and does source.user have REPLICATION CLIENT / BINLOG MONITOR?)")
	}
	file, _ := res.GetString(0, 0)
	pos, _ := res.GetUint(0, 1)
	return file, uint32(pos), nil
}

func queryString(conn *client.Conn, q string) (string, error) {
	res, err := conn.Execute(q)
	if err != nil {
		return "", err
	}
	if res.RowNumber() == 0 {
		return "", nil
	}
	return res.GetString(0, 0)
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
// and rotation at Info.
type minLevelHandler struct {
	min  slog.Level
	next slog.Handler
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.next.Enabled(ctx, l)
}
func (h minLevelHandler) Handle(ctx context.Context, rec slog.Record) error {
	return h.next.Handle(ctx, rec)
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
