package mysql

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/mysqlconn"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/tlslink"
)

var _ sink.Sink = (*Sink)(nil)

// Config configures a MySQL/MariaDB sink.
type Config struct {
	Addr, User, Password string
	// Channel names the fencing lease 'hamal/<channel>' on the target.
	Channel string
	// Workers is the connection pool size, the number of Apply calls that
	// may run at once (default 16).
	Workers int
	// AllowKeyless lists "schema.table" globs (path.Match syntax) of tables
	// without a primary key or NOT NULL unique key that may be applied by
	// full-row match. Replaying their Txns is not idempotent: see the
	// package documentation.
	AllowKeyless []string
	Logger       *slog.Logger
	// SkipLease opens the sink without the fencing lease, for read-only
	// checks (hamal check) next to a running channel. Such a sink must not
	// Apply: without the lease every Apply fails.
	SkipLease bool
	// Site, when set, turns on the loop guard's origin markers: every
	// target transaction records the path of its Txns in
	// <HamalSchema>.origin_marker, and DDL carries it in a leading comment.
	Site string
	// HamalSchema holds Hamal's own tables on the target (default "hamal").
	HamalSchema string
	// Conflicts are the conflict policies, used with Site set (detection
	// runs only then: see conflict.go).
	Conflicts ConflictRules
	// Unsynced maps "schema.table" to its owner column: with Site set,
	// each target transaction clears <HamalSchema>.unsynced entries of the
	// owners it carries (see unsynced.go).
	Unsynced map[string]string
	// Ownership maps "schema.table" to its owner column and home-site
	// rule: with Site set, a change whose origin is not its owner's home
	// is applied and recorded as a foreign write (see ownership.go).
	Ownership map[string]Ownership
	// TLS, when set, encrypts every connection to the target and verifies
	// the server as it says.
	TLS *tls.Config

	leasePingInterval time.Duration // tests shorten it
	leaseAddr         string        // tests: the lock connection's address (default Addr)
}

const (
	defaultWorkers = 16
	// Rows and bytes per multi-row statement; both keep a statement well
	// under the default max_allowed_packet (16 MiB in MariaDB 10.11). The
	// byte bound also caps the statements a worker queues for one round
	// trip and the buffers it keeps between batches: a batch of ordinary
	// size (a few hundred KiB of SQL) still goes in one round trip, a huge
	// transaction's chunks in round trips of about 1 MiB. Every queued
	// byte is held twice while it is sent (go-mysql copies the command
	// into a buffer of its own), times the worker count: 4 MiB here made
	// the sink's buffers the largest part of hamal's heap while it applied
	// a 1M-row transaction.
	maxRowsPerStatement  = 1000
	maxBytesPerStatement = 1 << 20
	// maxRowsKept: a worker's row index of more rows than this is not
	// kept for the next batch (256 Txns of a few rows each fit).
	maxRowsKept = 4096
	// A pooled connection idle longer than this is pinged before use, so a
	// connection closed by wait_timeout does not cost a failed batch.
	idleCheckAfter = 30 * time.Second
	// sqlMode: strict, so a value the target cannot hold fails loudly
	// instead of being truncated; NO_AUTO_VALUE_ON_ZERO so an
	// AUTO_INCREMENT id 0 round-trips; ALLOW_INVALID_DATES and no
	// NO_ZERO_DATE / NO_ZERO_IN_DATE so every date the source stored
	// (zero dates, '2024-02-31' from a lenient source) is accepted back;
	// and never NO_BACKSLASH_ESCAPES or ANSI_QUOTES, which the literal
	// encoding relies on.
	sqlMode = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES"
)

// Sink applies batches of Txns to a MySQL or MariaDB target. Apply may be
// called by up to Config.Workers goroutines at once; each call holds one
// pooled connection for its duration.
type Sink struct {
	cfg   Config
	log   *slog.Logger
	lease *lease
	pool  chan *pooledConn
	// readCommitted: sessions use READ COMMITTED (fewer gap locks between
	// concurrent workers) unless the target logs statements, which needs
	// REPEATABLE READ.
	readCommitted bool
	maxStmtBytes  int
	quotedChannel string // SQL literal of Config.Channel

	mu        sync.Mutex
	conflicts *conflictState              // nil: no detection (no Site)
	foreign   foreignCounts               // ownership guard
	replaced  replacementCounts           // unique replacements (one-way)
	targets   map[string]*targetTable     // "schema.table" → target columns
	plans     map[*event.Table]*tablePlan // per source table description
	closed    atomic.Bool
}

// pooledConn is one slot of the pool; c is nil until first use or after
// the connection was lost.
type pooledConn struct {
	id       int // worker number, the marker row's key
	c        *client.Conn
	lastUsed time.Time
	st       applyState
}

// targetTable is the target's view of a table, from information_schema.
type targetTable struct {
	columns map[string]targetColumn // by lower-case name
}

type targetColumn struct {
	dataType  string
	charset   string // "" for non-text
	generated bool
}

// Open connects to the target, takes the fencing lease of the channel and
// opens the first pooled connection.
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	if cfg.Addr == "" {
		return nil, errors.New("mysql sink: sink.addr is empty: set it to the target's host:port")
	}
	if cfg.Channel == "" {
		return nil, errors.New("mysql sink: channel name is empty")
	}
	for _, g := range cfg.AllowKeyless {
		if _, err := path.Match(g, "x.y"); err != nil {
			return nil, fmt.Errorf("mysql sink: sink.allow_keyless_tables entry %q: %w", g, err)
		}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.HamalSchema == "" {
		cfg.HamalSchema = "hamal"
	}
	if err := cfg.Conflicts.validate(); err != nil {
		return nil, fmt.Errorf("mysql sink: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg:           cfg,
		log:           log.With("sink", "mysql", "addr", cfg.Addr),
		pool:          make(chan *pooledConn, cfg.Workers),
		targets:       make(map[string]*targetTable),
		plans:         make(map[*event.Table]*tablePlan),
		maxStmtBytes:  maxBytesPerStatement,
		quotedChannel: quoteString(cfg.Channel),
	}
	if cfg.Site != "" {
		s.conflicts = &conflictState{rules: cfg.Conflicts}
	}

	probe, err := s.dial(ctx, "", multiStatements) // it becomes pool slot 0
	if err != nil {
		if serverCode(err) == 0 && ctx.Err() == nil && !linkRefused(err) {
			// Could not reach it: an outage, not a wrong setting; the
			// channel retries (the message still names sink.addr).
			return nil, retry.Transient(err)
		}
		return nil, err
	}
	r, err := probe.Execute("SELECT @@binlog_format, @@max_allowed_packet")
	if err != nil {
		probe.Close()
		return nil, fmt.Errorf("mysql sink: read target settings on %s: %w", cfg.Addr, err)
	}
	binlogFormat, _ := r.GetString(0, 0)
	maxPacket, _ := r.GetInt(0, 1)
	s.readCommitted = !strings.EqualFold(binlogFormat, "STATEMENT")
	if half := int(maxPacket / 2); half > 0 && half < s.maxStmtBytes {
		s.maxStmtBytes = half
	}

	s.lease = newLease(s, leaseName(cfg.Channel))
	if cfg.leasePingInterval > 0 {
		s.lease.interval = cfg.leasePingInterval
	}
	if cfg.SkipLease {
		s.lease.state.Store(leaseLost)
	} else if err := s.lease.acquire(ctx); err != nil {
		probe.Close()
		return nil, err
	}
	if cfg.Site != "" && !cfg.SkipLease {
		if err := s.setupMarker(probe); err != nil {
			probe.Close()
			s.lease.close()
			return nil, err
		}
	}
	if err := s.initSession(probe, true); err != nil {
		probe.Close()
		s.lease.close()
		return nil, fmt.Errorf("mysql sink: set up session on %s: %w", cfg.Addr, err)
	}
	s.pool <- &pooledConn{id: 0, c: probe, lastUsed: time.Now()}
	for i := 1; i < cfg.Workers; i++ {
		s.pool <- &pooledConn{id: i}
	}
	if !cfg.SkipLease {
		s.lease.start()
	}
	return s, nil
}

// multiStatements lets a pooled connection send a batch's statements in
// one round trip (applier.exec), and answer the LOCAL INFILE request of a
// copy's LOAD DATA with the chunk it holds (Copy; no other file is ever
// sent).
func multiStatements(c *client.Conn) error {
	if err := c.SetCapability(mysql.CLIENT_MULTI_STATEMENTS); err != nil {
		return err
	}
	if err := c.SetCapability(mysql.CLIENT_LOCAL_FILES); err != nil {
		return err
	}
	return c.SetCapability(mysql.CLIENT_MULTI_RESULTS)
}

// dial opens one connection, turning the usual failures into messages that
// name the setting to fix.
// Every connection goes through mysqlconn: TLS when configured and never
// clear text then, and no login that would expose the password.
func (s *Sink) dial(ctx context.Context, db string, opts ...client.Option) (*client.Conn, error) {
	return s.dialAddr(ctx, s.cfg.Addr, db, opts...)
}

// dialAddr is dial to addr (the lease's connection may go another way in
// tests).
func (s *Sink) dialAddr(ctx context.Context, addr, db string, opts ...client.Option) (*client.Conn, error) {
	c, err := mysqlconn.Connect(ctx, mysqlconn.Target{Addr: addr, User: s.cfg.User, Password: s.cfg.Password, DB: db,
		TLS: s.cfg.TLS, Key: "sink.tls"}, opts...)
	if err == nil {
		return c, nil
	}
	switch code := serverCode(err); {
	case linkRefused(err):
		return nil, fmt.Errorf("mysql sink: target sink.addr=%s: %w", s.cfg.Addr, err)
	case code == erAccessDenied:
		return nil, fmt.Errorf("mysql sink: target %s refused user %q (sink.addr=%s, sink.user=%s): check sink.user and sink.password, and that the user may connect from this host: %w",
			s.cfg.Addr, s.cfg.User, s.cfg.Addr, s.cfg.User, err)
	case code != 0:
		return nil, fmt.Errorf("mysql sink: connect to target sink.addr=%s as sink.user=%s: %w", s.cfg.Addr, s.cfg.User, err)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("mysql sink: connect to target sink.addr=%s: %w", s.cfg.Addr, ctx.Err())
	}
	return nil, fmt.Errorf("mysql sink: cannot reach target at sink.addr=%s: check sink.addr and that the server is running and reachable: %w", s.cfg.Addr, err)
}

// linkRefused reports a connection Hamal refused as configured (TLS
// failed or not offered, a login that would expose the password): a
// setting to fix, not an outage.
func linkRefused(err error) bool {
	return errors.Is(err, mysqlconn.ErrPasswordExposed) || errors.Is(err, tlslink.ErrTLS)
}

// initSession sets what every sink connection relies on: UTC for
// TIMESTAMP strings, utf8mb4 literals, the sql_mode above, no foreign key
// checks (independent Txns commit in any order), unique checks on. Pool
// connections also run with autocommit off, so a batch needs no BEGIN: its
// first statement opens the transaction and COMMIT ends it.
func (s *Sink) initSession(c *client.Conn, pooled bool) error {
	q := "SET NAMES utf8mb4, time_zone='+00:00', sql_mode='" + sqlMode + "', foreign_key_checks=0, unique_checks=1"
	if pooled {
		q += ", autocommit=0"
	}
	if _, err := c.Execute(q); err != nil {
		return err
	}
	if pooled && s.readCommitted {
		if _, err := c.Execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"); err != nil {
			return err
		}
	}
	return nil
}

// connect makes sure slot holds a live, set-up connection.
func (s *Sink) connect(ctx context.Context, slot *pooledConn) error {
	if slot.c != nil && time.Since(slot.lastUsed) > idleCheckAfter {
		if err := slot.c.Ping(); err != nil {
			s.log.Info("pooled connection went stale; reconnecting", "err", err)
			s.drop(slot)
		}
	}
	if slot.c != nil {
		return nil
	}
	c, err := s.dial(ctx, "", multiStatements)
	if err != nil {
		if serverCode(err) != 0 && classify(err) == classFatal {
			return err // e.g. the password was changed: retrying will not help
		}
		return retry.Transient(err)
	}
	if err := s.initSession(c, true); err != nil {
		c.Close()
		if classify(err) == classFatal {
			return err
		}
		return retry.Transient(err)
	}
	slot.c = c
	return nil
}

// drop closes a connection whose state is unknown.
func (s *Sink) drop(slot *pooledConn) {
	if slot.c != nil {
		_ = slot.c.Close()
		slot.c = nil
	}
}

// Close releases the pooled connections and the fencing lease. Call it
// after the last Apply has returned.
func (s *Sink) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for {
		select {
		case slot := <-s.pool:
			if slot.c != nil {
				_ = slot.c.Close()
			}
			continue
		default:
		}
		break
	}
	return s.lease.close()
}

// acquire takes a pooled connection, waiting while all are in use.
func (s *Sink) acquire(ctx context.Context) (*pooledConn, error) {
	select {
	case slot := <-s.pool:
		return slot, nil
	default:
	}
	select {
	case slot := <-s.pool:
		return slot, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Sink) release(slot *pooledConn) {
	if s.closed.Load() {
		if slot.c != nil {
			_ = slot.c.Close()
		}
		return
	}
	s.pool <- slot
}

// CheckTable verifies that the target has table schema.name with all of
// columns (names compare case-insensitively, as MySQL does). The error
// names the missing table or columns and how to fix them.
func (s *Sink) CheckTable(ctx context.Context, schema, name string, columns []string) error {
	slot, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer s.release(slot)
	if err := s.connect(ctx, slot); err != nil {
		return err
	}
	s.forgetTarget(schema + "." + name)
	tt, err := s.target(slot, schema, name)
	if err == nil {
		// The lookup ran in the session's open transaction; end it so the
		// connection holds no snapshot while idle.
		_, err = slot.c.Execute("ROLLBACK")
	}
	if err != nil {
		if classify(err) != classFatal {
			s.drop(slot)
			return retry.Transient(err)
		}
		return err
	}
	if tt == nil {
		return missingTableError(schema, name)
	}
	var missing []string
	for _, c := range columns {
		if _, ok := tt.columns[strings.ToLower(c)]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return missingColumnsError(schema, name, missing)
	}
	return nil
}

// TableError is a target table missing, or lacking columns the source
// sends (CheckTable, and Apply's error for it).
type TableError struct {
	Schema, Name string
	Missing      []string // the columns it lacks; nil: the table is missing
}

// What says what is wrong, without the fix.
func (e *TableError) What() string {
	if e.Missing == nil {
		return fmt.Sprintf("target table %s.%s does not exist", e.Schema, e.Name)
	}
	return fmt.Sprintf("target table %s.%s lacks column(s) %s", e.Schema, e.Name, strings.Join(e.Missing, ", "))
}

// Fix says how to fix it.
func (e *TableError) Fix() string {
	if e.Missing == nil {
		return "create it on the target (e.g. from SHOW CREATE TABLE on the source), or start a new channel with source.start: snapshot, which creates it"
	}
	return fmt.Sprintf("add them on the target with the source's definitions (ALTER TABLE %s.%s ADD COLUMN %s ...)",
		quoteIdent(e.Schema), quoteIdent(e.Name), quoteIdent(e.Missing[0]))
}

// Error is What and Fix, and what a stopped channel needs afterwards.
func (e *TableError) Error() string {
	return e.What() + ": " + e.Fix() + "; then POST /resume or restart the channel"
}

func missingTableError(schema, name string) error { return &TableError{Schema: schema, Name: name} }

func missingColumnsError(schema, name string, missing []string) error {
	return &TableError{Schema: schema, Name: name, Missing: missing}
}

// target returns the cached target columns of schema.name, reading them from
// information_schema on first use; nil when the table does not exist.
func (s *Sink) target(slot *pooledConn, schema, name string) (*targetTable, error) {
	ns := schema + "." + name
	s.mu.Lock()
	tt, ok := s.targets[ns]
	s.mu.Unlock()
	if ok {
		return tt, nil
	}
	r, err := slot.c.Execute("SELECT COLUMN_NAME, DATA_TYPE, IFNULL(CHARACTER_SET_NAME,''), EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=" +
		quoteString(schema) + " AND TABLE_NAME=" + quoteString(name))
	if err != nil {
		return nil, err
	}
	if len(r.Values) > 0 {
		tt = &targetTable{columns: make(map[string]targetColumn, len(r.Values))}
		for i := range r.Values {
			colName, _ := r.GetString(i, 0)
			dataType, _ := r.GetString(i, 1)
			charset, _ := r.GetString(i, 2)
			extra, _ := r.GetString(i, 3)
			tt.columns[strings.ToLower(colName)] = targetColumn{
				dataType:  strings.ToLower(dataType),
				charset:   strings.ToLower(charset),
				generated: strings.Contains(strings.ToUpper(extra), "GENERATED"),
			}
		}
	}
	if tt != nil { // a missing table is looked up again next time
		s.mu.Lock()
		s.targets[ns] = tt
		s.mu.Unlock()
	}
	return tt, nil
}

func (s *Sink) forgetTarget(ns string) {
	s.mu.Lock()
	delete(s.targets, ns)
	for t := range s.plans {
		if t.Namespace() == ns {
			delete(s.plans, t)
		}
	}
	s.mu.Unlock()
}

// forgetAll drops every cached table description (after a DDL).
func (s *Sink) forgetAll() {
	s.mu.Lock()
	clear(s.targets)
	clear(s.plans)
	s.mu.Unlock()
}

// keylessAllowed reports whether ns matches Config.AllowKeyless.
func (s *Sink) keylessAllowed(ns string) bool {
	for _, g := range s.cfg.AllowKeyless {
		if ok, _ := path.Match(g, ns); ok {
			return true
		}
	}
	return false
}
