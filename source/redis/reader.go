package redis

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hdt3213/rdb/core"
	"github.com/hdt3213/rdb/model"
	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/redisrepl"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/tlslink"
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

// NewClient is a go-redis client of the master as cfg says, TLS
// included (for COMMAND, INFO and hamal check). The caller closes it.
func NewClient(cfg Config) *goredis.Client {
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	// 30 s, not go-redis's 3 s: COMMAND's reply is large and a busy source
	// (or a stalled host) can take seconds; ctx still bounds the wait.
	return goredis.NewClient(&goredis.Options{Addr: cfg.Addr, Username: cfg.User, Password: cfg.Password,
		DialTimeout: timeout, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, MaxRetries: -1, PoolSize: 1,
		// One dial per attempt: the channel retries, and a failed TLS
		// handshake is reported at once rather than after five.
		DialerRetries: 1,
		Dialer: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return tlslink.Dial(ctx, addr, cfg.TLS, timeout, "source.tls")
		}})
}

// Explain is classify for callers outside the package (hamal check): the
// error with its cause named.
func Explain(cfg Config, err error) error { return classify(cfg, err) }

// classify turns a connection or auth error into an error naming the
// server and the fix; refused connections are transient, a TLS link that
// cannot be set up as configured is fatal.
func classify(cfg Config, err error) error {
	addr := cfg.Addr
	if errors.Is(err, tlslink.ErrTLS) {
		return fmt.Errorf("source redis %s: %w", addr, err)
	}
	if errors.Is(err, tlslink.ErrHandshakeTimeout) {
		return retry.Transient(fmt.Errorf("source redis %s: %w", addr, err))
	}
	if cfg.TLS != nil {
		// A failure after the handshake may still be TLS's (a client
		// certificate the master refuses shows on the first read).
		if e := tlslink.Explain("source.tls", addr, err); e != err {
			return fmt.Errorf("source redis %s: %w", addr, e)
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "invalid password"):
		return fmt.Errorf("source redis %s: authentication failed: %w; check source.user and source.password", addr, err)
	case strings.Contains(msg, "NOPERM"):
		return fmt.Errorf("source redis %s: permission denied: %w; the user needs +psync +replconf +command +info", addr, err)
	}
	var ne net.Error
	var oe *net.OpError
	if cfg.TLS == nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		// What a TLS-only port does to a plain client: it hangs up at once.
		return retry.Transient(fmt.Errorf("source redis %s closed the connection at once: %w; if it takes only TLS on this port, set source.tls (enabled: true, ca: <the CA's PEM>); else check source.addr and that redis-server runs", addr, err))
	}
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, io.EOF) {
		return retry.Transient(fmt.Errorf("source redis %s unreachable: %w; check source.addr and that redis-server runs", addr, err))
	}
	return fmt.Errorf("source redis %s: %w", addr, err)
}

func (s *Source) connect(ctx context.Context, from *Position) error {
	// TLS when configured, and then never plain: AUTH and the stream
	// cross the link only encrypted.
	conn, err := tlslink.Dial(ctx, s.cfg.Addr, s.cfg.TLS, s.cfg.DialTimeout, "source.tls")
	if err != nil {
		return classify(s.cfg, err)
	}
	s.conn = conn
	s.rd = &respReader{br: bufio.NewReaderSize(conn, 1<<20), maxBulk: s.cfg.MaxBulkBytes}
	fail := func(err error) error {
		conn.Close()
		return classify(s.cfg, err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if s.cfg.Password != "" {
		args := []string{"AUTH", s.cfg.Password}
		if s.cfg.User != "" {
			args = []string{"AUTH", s.cfg.User, s.cfg.Password}
		}
		if _, err := s.request(args...); err != nil {
			return fail(err)
		}
	}
	port := "0"
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	if _, err := s.request("REPLCONF", "listening-port", port); err != nil {
		return fail(err)
	}
	if _, err := s.request("REPLCONF", "capa", "eof", "capa", "psync2"); err != nil {
		return fail(err)
	}
	psync := []string{"PSYNC", "?", "-1"}
	if from != nil && !from.Snapshot {
		psync = []string{"PSYNC", from.ReplID, strconv.FormatInt(from.Offset+1, 10)}
	}
	reply, err := s.request(psync...)
	if err != nil {
		return fail(err)
	}
	_ = conn.SetDeadline(time.Time{})
	f := strings.Fields(reply)
	switch {
	case len(f) == 3 && f[0] == "FULLRESYNC":
		off, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return fail(fmt.Errorf("%w: bad FULLRESYNC reply %q", errProtocol, reply))
		}
		if from != nil && !from.Snapshot {
			s.log.Warn("master cannot continue from the checkpoint (its backlog no longer holds the offset); doing a full sync",
				"checkpoint", from.String(), "replid", f[1], "offset", off)
		}
		s.fullSync = true
		s.start = Position{ReplID: f[1], Offset: off, Epoch: f[1] + ":" + f[2], DB: -1, Snapshot: true}
	case len(f) >= 1 && f[0] == "CONTINUE" && from != nil:
		s.start = *from
		if len(f) == 2 {
			s.start.ReplID = f[1]
		}
		s.log.Info("master continues the stream", "replid", s.start.ReplID, "offset", s.start.Offset)
	default:
		return fail(fmt.Errorf("%w: unexpected reply to %s: %q", errProtocol, strings.Join(psync, " "), reply))
	}
	s.pos = s.start
	return nil
}

// request sends one command during the handshake and reads a status reply.
func (s *Source) request(args ...string) (string, error) {
	if err := s.send(args...); err != nil {
		return "", err
	}
	for {
		line, err := s.rd.readLine()
		if err != nil {
			return "", err
		}
		if len(line) == 0 {
			continue // keep-alive newline
		}
		switch line[0] {
		case '+':
			return string(line[1:]), nil
		case '-':
			return "", fmt.Errorf("%s: %s", args[0], line[1:])
		}
		return "", fmt.Errorf("%w: unexpected reply to %s: %q", errProtocol, args[0], line)
	}
}

func (s *Source) send(args ...string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := s.conn.Write(b.Bytes())
	return err
}

func (s *Source) ack() error {
	return s.send("REPLCONF", "ACK", strconv.FormatInt(s.acked.Load(), 10))
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

func (s *Source) stream() error {
	pos := s.start
	enc := redisrepl.NewEncoder(pos.ReplID, pos.Epoch)
	if s.fullSync {
		if err := s.readRDB(pos, enc); err != nil {
			return err
		}
		pos.Snapshot = false
		// The RDB is loaded: from here a resume continues the stream.
		if !s.emit(&event.Txn{Pos: enc.Encode(pos.Offset, pos.DB), Kind: event.KindHeartbeat, CommitTime: time.Now()}, pos) ||
			!s.flush() {
			return errClosed
		}
	}
	s.acked.Store(pos.Offset)
	if err := s.ack(); err != nil {
		return s.broken(err)
	}
	s.wg.Add(1)
	go s.ackLoop()

	base := s.rd.n - pos.Offset // rd.n - base == stream offset
	db := pos.DB
	var multi *event.Txn
	var multiOrigin string
	// at is the position after the command just read.
	at := func(offset int64) Position {
		return Position{ReplID: pos.ReplID, Offset: offset, Epoch: pos.Epoch, DB: db}
	}
	for {
		args, err := s.rd.readCommand()
		if err != nil {
			select {
			case <-s.stop:
				return errClosed
			default:
			}
			if errors.Is(err, ErrTooLarge) {
				// Fatal: reconnecting would read the same command again.
				return fmt.Errorf("source redis %s at offset %d: %w", s.cfg.Addr, s.rd.n-base, err)
			}
			return s.broken(err)
		}
		offset := s.rd.n - base
		now := time.Now()
		s.acked.Store(offset)
		s.contact.Store(now.UnixNano())
		if len(args) == 0 {
			continue
		}
		switch control(args[0]) {
		case ctlSelect:
			if len(args) != 2 {
				return fmt.Errorf("%w: %q", errProtocol, args)
			}
			n, err := strconv.Atoi(string(args[1]))
			if err != nil {
				return fmt.Errorf("%w: SELECT %q", errProtocol, args[1])
			}
			db = n
			continue
		case ctlMulti:
			multi, multiOrigin = &event.Txn{Kind: event.KindDML}, ""
			continue
		case ctlExec:
			if multi == nil {
				continue
			}
			t := multi
			multi = nil
			if !s.emit(s.finish(t, multiOrigin, enc.Encode(offset, db), now), at(offset)) {
				return errClosed
			}
			continue
		case ctlPing, ctlReplconf:
			if len(args) > 1 && bytes.EqualFold(args[1], []byte("getack")) && bytes.EqualFold(args[0], []byte("replconf")) {
				if err := s.ack(); err != nil {
					return s.broken(err)
				}
			}
			if multi == nil {
				t := &event.Txn{Kind: event.KindHeartbeat}
				if !s.emit(s.finish(t, "", enc.Encode(offset, db), now), at(offset)) {
					return errClosed
				}
			}
			continue
		}
		if db < 0 {
			return fmt.Errorf("%w: command %s before any SELECT", errProtocol, args[0])
		}
		t := multi
		s.tagSlot = nil
		if t == nil {
			b := &oneCommand{}
			b.txn.Kind = event.KindDML
			b.txn.Changes = b.ch[:0:1]
			t, s.tagSlot = &b.txn, b.tag[:0:1]
		}
		origin, isMarker, err := s.addCommand(t, db, args)
		if err != nil {
			return fmt.Errorf("source redis %s at offset %d: %w", s.cfg.Addr, offset, err)
		}
		if isMarker && multi != nil {
			multiOrigin = origin
		}
		if multi == nil {
			if !s.emit(s.finish(t, "", enc.Encode(offset, db), now), at(offset)) {
				return errClosed
			}
		}
	}
}

// Stream commands the reader handles itself rather than emitting.
const (
	ctlNone = iota
	ctlSelect
	ctlMulti
	ctlExec
	ctlPing
	ctlReplconf
)

// control names the stream-control command name is, without allocating.
func control(name []byte) int {
	switch len(name) {
	case 4:
		if bytes.EqualFold(name, []byte("exec")) {
			return ctlExec
		}
		if bytes.EqualFold(name, []byte("ping")) {
			return ctlPing
		}
	case 5:
		if bytes.EqualFold(name, []byte("multi")) {
			return ctlMulti
		}
	case 6:
		if bytes.EqualFold(name, []byte("select")) {
			return ctlSelect
		}
	case 8:
		if bytes.EqualFold(name, []byte("replconf")) {
			return ctlReplconf
		}
	}
	return ctlNone
}

// addCommand appends one command to t, unless it only touches Hamal's own
// keys or the filter drops it; a loop-guard marker returns its origin. The
// filter may narrow the command to the keys it keeps, map its database, or
// refuse it (an error naming the command: the channel stops).
func (s *Source) addCommand(t *event.Txn, db int, args [][]byte) (origin string, marker bool, err error) {
	keys, ok := s.cmds.Keys(args)
	if ok && allHamal(keys) {
		if len(args) >= 3 && bytes.EqualFold(args[0], []byte("set")) && bytes.HasPrefix(args[1], []byte(OriginPrefix)) {
			return string(args[2]), true, nil
		}
		return "", false, nil
	}
	if !s.cfg.Filter.active() {
		s.appendChange(t, db, args, keys, ok)
		return "", false, nil
	}
	routes, err := s.cfg.Filter.route(db, args, keys, ok)
	if err != nil {
		return "", false, err
	}
	for _, r := range routes {
		keys, ok := s.cmds.Keys(r.args)
		s.appendChange(t, r.db, r.args, keys, ok)
	}
	return "", false, nil
}

// oneCommand is a Txn of one command with its Change and its slot tag,
// in one allocation: most of a stream is single commands on one slot.
type oneCommand struct {
	txn event.Txn
	ch  [1]event.Change
	tag [1][]byte
}

func (s *Source) appendChange(t *event.Txn, db int, args, keys [][]byte, known bool) {
	c := event.Change{Op: event.OpCommand, Namespace: strconv.Itoa(db), Args: args}
	if known {
		if len(keys) == 1 && s.tagSlot != nil {
			// The slot tag goes in the Txn's own block (oneCommand).
			c.Keys = append(s.tagSlot, redisrepl.SlotTag(keys[0]))
			s.tagSlot = nil
		} else {
			c.Keys = slotTags(keys)
		}
	} else {
		t.Kind = event.KindBarrier
	}
	t.Changes = append(t.Changes, c)
}

func allHamal(keys [][]byte) bool {
	for _, k := range keys {
		if !bytes.HasPrefix(k, []byte(MarkerPrefix)) {
			return false
		}
	}
	return true
}

// slotTags returns the distinct slot tags of keys (shared bytes).
func slotTags(keys [][]byte) [][]byte {
	if len(keys) == 1 {
		return [][]byte{redisrepl.SlotTag(keys[0])}
	}
	tags := make([][]byte, 0, len(keys))
	slots := make([]int, 0, len(keys))
	for _, k := range keys {
		if sl := redisrepl.Slot(k); !slices.Contains(slots, sl) {
			slots = append(slots, sl)
			tags = append(tags, redisrepl.TagOf(sl))
		}
	}
	return tags
}

// finish stamps position, time and origin; a Txn left without data
// becomes a heartbeat that only moves the position.
func (s *Source) finish(t *event.Txn, origin string, pos event.Position, now time.Time) *event.Txn {
	t.Pos = pos
	t.CommitTime = now
	if len(t.Changes) == 0 {
		t.Kind = event.KindHeartbeat
		t.Changes = nil
	}
	if origin == "" {
		origin = s.cfg.Site
	}
	t.Origin = origin
	return t
}

// readRDB reads the snapshot after +FULLRESYNC and emits one Txn per key.
func (s *Source) readRDB(pos Position, enc *redisrepl.Encoder) error {
	var hdr []byte
	for {
		line, err := s.rd.readLine()
		if err != nil {
			return s.broken(fmt.Errorf("read RDB header: %w", err))
		}
		if len(line) > 0 {
			hdr = line
			break
		}
	}
	var body io.Reader
	switch {
	case bytes.HasPrefix(hdr, []byte("$EOF:")) && len(hdr) == 5+40:
		body = &eofMarkReader{r: s.rd.br, mark: append([]byte(nil), hdr[5:]...)}
	case len(hdr) > 1 && hdr[0] == '$':
		n, err := strconv.ParseInt(string(hdr[1:]), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: bad RDB header %q", errProtocol, hdr)
		}
		body = io.LimitReader(s.rd.br, n)
	default:
		return fmt.Errorf("%w: bad RDB header %q", errProtocol, hdr)
	}
	s.log.Info("full sync: reading the master's RDB", "replid", pos.ReplID, "offset", pos.Offset)
	snapPos := enc.Snapshot(pos.Offset, pos.DB)
	var keys int
	var cbErr error
	now := time.Now()
	dec := core.NewDecoder(body).WithMaxLength(uint64(s.cfg.MaxBulkBytes)).WithoutSizes()
	err := parseRDB(dec, func(obj model.RedisObject) bool {
		s.contact.Store(time.Now().UnixNano())
		if strings.HasPrefix(obj.GetKey(), MarkerPrefix) || expired(obj, now) || !s.cfg.Filter.KeyIn([]byte(obj.GetKey())) {
			return true
		}
		db, replicated := s.cfg.Filter.TargetDB(obj.GetDBIndex())
		if !replicated {
			return true
		}
		cmds, err := objectCommands(obj)
		if err != nil {
			cbErr = fmt.Errorf("full sync from %s: %w", s.cfg.Addr, err)
			return false
		}
		ns := strconv.Itoa(db)
		tag := [][]byte{redisrepl.SlotTag([]byte(obj.GetKey()))}
		t := &event.Txn{Kind: event.KindDML, Pos: snapPos, CommitTime: time.Now(), Origin: s.cfg.Site,
			Changes: make([]event.Change, len(cmds))}
		for i, c := range cmds {
			t.Changes[i] = event.Change{Op: event.OpCommand, Namespace: ns, Args: c, Keys: tag}
		}
		keys++
		if !s.emit(t, pos) {
			cbErr = errClosed
			return false
		}
		return true
	})
	if cbErr != nil {
		return cbErr
	}
	if lerr := dec.LimitError(); lerr != nil {
		// Fatal: the same RDB would come again.
		return fmt.Errorf("full sync from %s: %w: %v; raise source.max_bulk_bytes (now %d) if the master really holds such a value",
			s.cfg.Addr, ErrTooLarge, lerr, s.cfg.MaxBulkBytes)
	}
	if err != nil {
		select {
		case <-s.stop:
			return errClosed
		default:
		}
		return s.broken(fmt.Errorf("parse RDB: %w", err))
	}
	// Consume the rest (checksum, end mark) so the stream starts aligned.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return s.broken(fmt.Errorf("read RDB tail: %w", err))
	}
	s.log.Info("full sync: RDB read", "keys", keys)
	return nil
}

// parseRDB runs the decoder, turning a panic of the third-party parser
// on malformed input into an error.
func parseRDB(dec *core.Decoder, cb func(model.RedisObject) bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: malformed RDB: the parser failed: %v", errProtocol, r)
		}
	}()
	return dec.Parse(cb)
}

// broken marks a stream failure as transient: the engine reopens the
// source at its checkpoint.
func (s *Source) broken(err error) error {
	select {
	case <-s.stop:
		return errClosed
	default:
	}
	return retry.Transient(fmt.Errorf("replication stream from %s: %w", s.cfg.Addr, err))
}

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

func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimRight(line, "\r")
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}
