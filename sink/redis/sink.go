package redis

import (
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
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/redisrepl"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/tlslink"
)

// Config configures the Redis sink.
type Config struct {
	Addr     string
	User     string
	Password string
	Channel  string
	// Site names the target's site: Txns whose Origin equals it came from
	// this target in the first place and are dropped (loop guard).
	Site    string
	Workers int
	Logger  *slog.Logger
	// SkipLease opens without the fencing lease, for preflight checks that
	// never apply (hamal check while the channel runs).
	SkipLease bool
	// LeaseTTL is the fencing lease's time to live (default 10 s): how long
	// a successor waits for a holder that cannot be seen to be gone.
	LeaseTTL time.Duration
	// TLS, when set, encrypts every connection to the target; the target
	// must take TLS (never clear text then).
	TLS *tls.Config
}

// barrierField is the fence field of Txns without keys (FLUSHALL, …).
const barrierField = "barrier"

// Sink applies Txns to one Redis target, exactly once.
type Sink struct {
	cfg      Config
	log      *slog.Logger
	client   *goredis.Client
	conns    chan *conn
	fenceKey string
	lease    *lease // nil with SkipLease
	closed   atomic.Bool

	// known holds the fence fields whose value on the target this process
	// knows: read by a batch, or written by an EXEC that committed. While
	// the lease is held nobody else writes them, so a batch reads only the
	// fields it has not seen (after a start, each slot once). A field is
	// forgotten when an EXEC's outcome is unknown, and all of them when the
	// lease keys were found gone (the target was flushed).
	knownMu sync.Mutex
	known   map[string]fence
}

// fence is one fence field's value; a zero fence: no Txn applied.
type fence struct {
	epoch  string
	offset int64
	set    bool
}

// conn is one dedicated connection; its id names its origin marker key.
type conn struct {
	id string
	c  *goredis.Conn
	db int
	// watching is set while a WATCH may be active on c (between begin and
	// the end of EXEC), so the next begin UNWATCHes first.
	watching bool
}

// FenceKey returns the hash holding a channel's offset fences.
func FenceKey(channel string) string { return redisrepl.FenceKey(channel) }

// Open connects to the target and checks it answers.
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	if cfg.Channel == "" {
		return nil, errors.New("redis sink: Channel is required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	client := goredis.NewClient(&goredis.Options{Addr: cfg.Addr, Username: cfg.User, Password: cfg.Password,
		PoolSize: cfg.Workers + 3, MaxRetries: -1, DialTimeout: 10 * time.Second,
		ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second,
		Dialer: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return tlslink.Dial(ctx, addr, cfg.TLS, 10*time.Second, "sink.tls")
		}, DialerRetries: 1})
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		if cfg.TLS != nil {
			// A client certificate the target refuses shows on the first
			// read, after the handshake.
			err = tlslink.Explain("sink.tls", cfg.Addr, err)
		} else if errors.Is(err, io.EOF) {
			// What a TLS-only port does to a plain client.
			err = fmt.Errorf("%w (the target hung up at once: if it takes only TLS on this port, set sink.tls)", err)
		}
		return nil, classify(cfg.Addr, err)
	}
	s := &Sink{cfg: cfg, log: cfg.Logger, client: client, conns: make(chan *conn, cfg.Workers), fenceKey: FenceKey(cfg.Channel),
		known: map[string]fence{}}
	if !cfg.SkipLease {
		ttl := cfg.LeaseTTL
		if ttl <= 0 {
			ttl = defaultLeaseTTL
		}
		l, err := acquireLease(ctx, client, cfg.Channel, ttl)
		if err != nil {
			client.Close()
			if errors.Is(err, ErrLeaseHeld) {
				return nil, err
			}
			return nil, classify(cfg.Addr, err)
		}
		s.lease = l
	}
	for i := 0; i < cfg.Workers; i++ {
		s.conns <- &conn{id: fmt.Sprintf("%s:%d", cfg.Channel, i)}
	}
	return s, nil
}

func classify(addr string, err error) error {
	if errors.Is(err, tlslink.ErrTLS) {
		return fmt.Errorf("target redis %s: %w", addr, err) // refused as configured: fatal
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "invalid password"):
		return fmt.Errorf("target redis %s: authentication failed: %w; check sink.user and sink.password", addr, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, goredis.ErrClosed) ||
		strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "BUSY") || strings.HasPrefix(msg, "TRYAGAIN") {
		return retry.Transient(fmt.Errorf("target redis %s: %w", addr, err))
	}
	return fmt.Errorf("target redis %s: %w", addr, err)
}

// Apply applies a batch through the target protocol (sink.Apply; unit.go):
// Txns that came from this target's own site are dropped, then each run of
// one path is one MULTI/EXEC that skips the Txns the offset fence shows
// applied and moves the fences of the rest.
func (s *Sink) Apply(ctx context.Context, batch []*event.Txn) error {
	if s.cfg.Site != "" {
		kept := make([]*event.Txn, 0, len(batch))
		for _, t := range batch {
			if t.Origin != s.cfg.Site { // loop guard: it came from this target
				kept = append(kept, t)
			}
		}
		batch = kept
	}
	if len(batch) == 0 {
		return nil
	}
	return sink.Apply(ctx, s, batch)
}

// fenceFields names the fence fields of a Txn: "<db>/<slot tag>" for each
// conflict key, or "barrier" for a Txn without keys.
func fenceFields(t *event.Txn) []string {
	if t.IsBarrier() {
		return []string{barrierField}
	}
	var out []string
	for i := range t.Changes {
		c := &t.Changes[i]
		for _, k := range c.Keys {
			f := c.Namespace + "/" + string(k)
			// Few fields per Txn (its keys' slots): a scan beats a map.
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// begin opens a batch on c in one round trip: it WATCHes the fencing lease
// and checks this process holds it (so the MULTI/EXEC that follows aborts
// if the lease changes hands before it), and reads the fence fields this
// process does not know yet. It returns the fences of fields.
func (s *Sink) begin(ctx context.Context, c *conn, fields []string) (map[string]fence, error) {
	out := make(map[string]fence, len(fields))
	var unknown []string
	s.knownMu.Lock()
	for _, f := range fields {
		if _, seen := out[f]; seen {
			continue
		}
		v, ok := s.known[f]
		out[f] = v
		if !ok {
			unknown = append(unknown, f)
		}
	}
	s.knownMu.Unlock()
	var holder *goredis.StringCmd
	var fenceCmd *goredis.SliceCmd
	_, err := c.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		if c.db != 0 {
			p.Select(ctx, 0) // the lease and the fences live in database 0
		}
		if s.lease != nil {
			if c.watching {
				p.Do(ctx, "UNWATCH")
			}
			p.Do(ctx, "WATCH", s.lease.owner)
			holder = p.Get(ctx, s.lease.owner)
		}
		if len(unknown) > 0 {
			fenceCmd = p.HMGet(ctx, s.fenceKey, unknown...)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		c.c.Close()
		c.c = nil
		return nil, classify(s.cfg.Addr, fmt.Errorf("read lease %s and offset fence %s: %w", LeaseKey(s.cfg.Channel), s.fenceKey, err))
	}
	c.db = 0
	c.watching = s.lease != nil
	if holder != nil {
		v, err := holder.Result()
		missing := errors.Is(err, goredis.Nil)
		if missing {
			// The lease keys are gone, so the fences may be too.
			s.forget(nil)
		}
		if err := s.lease.check(ctx, v, missing); err != nil {
			return nil, err
		}
	}
	if fenceCmd == nil {
		return out, nil
	}
	s.knownMu.Lock()
	defer s.knownMu.Unlock()
	for i, v := range fenceCmd.Val() {
		var fv fence
		if str, ok := v.(string); ok {
			if fv.epoch, fv.offset, fv.set = parseFence(str); !fv.set {
				return nil, fmt.Errorf("redis sink: fence field %q of %s holds %q, not \"<epoch> <offset>\"", unknown[i], s.fenceKey, str)
			}
		}
		out[unknown[i]] = fv
		s.known[unknown[i]] = fv
	}
	return out, nil
}

// forget drops fields from the known fences (all of them for nil).
func (s *Sink) forget(fields map[string]string) {
	s.knownMu.Lock()
	defer s.knownMu.Unlock()
	if fields == nil {
		clear(s.known)
		return
	}
	for f := range fields {
		delete(s.known, f)
	}
}

// remember records fences an EXEC committed.
func (s *Sink) remember(fences map[string]fence) {
	s.knownMu.Lock()
	defer s.knownMu.Unlock()
	for f, v := range fences {
		s.known[f] = v
	}
}

// applied reports whether a fence shows the Txn was applied: a fence of its
// epoch at or beyond its offset. Fences of one Txn move together (one
// MULTI), and a later Txn on one of its slots waits for it (the DAG orders
// by slot), so any one of its fields tells.
func applied(pl planned, fences map[string]fence) bool {
	for _, f := range pl.fields {
		if v := fences[f]; v.set && v.epoch == pl.pos.Epoch && v.offset >= pl.pos.Offset {
			return true
		}
	}
	return false
}

func fenceValue(p redisrepl.Position) string { return p.Epoch + " " + strconv.FormatInt(p.Offset, 10) }

func parseFence(v string) (epoch string, off int64, ok bool) {
	e, o, found := strings.Cut(v, " ")
	if !found {
		return "", 0, false
	}
	n, err := strconv.ParseInt(o, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return e, n, true
}

// exec applies Txns of one path in one MULTI/EXEC: the origin marker
// first (when origin is set), then every command (SELECTing its
// database), then the fences. EXEC aborts if the lease owner key WATCHed
// by begin changed.
func (s *Sink) exec(ctx context.Context, c *conn, txns []planned, origin string) error {
	db := c.db
	fences := map[string]string{}
	last := map[string]redisrepl.Position{}
	var slab []any // the commands' arguments, cut from one allocation per 1024
	cmds, err := c.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		if origin != "" {
			if db != 0 {
				p.Select(ctx, 0)
				db = 0
			}
			p.Set(ctx, redisrepl.OriginPrefix+c.id, origin, 0)
		}
		for _, pl := range txns {
			for i := range pl.txn.Changes {
				ch := &pl.txn.Changes[i]
				n, err := strconv.Atoi(ch.Namespace)
				if err != nil || n < 0 {
					return fmt.Errorf("redis sink: change at %s has namespace %q, not a database number", pl.pos, ch.Namespace)
				}
				if n != db {
					p.Select(ctx, n)
					db = n
				}
				if len(slab) < len(ch.Args) {
					slab = make([]any, max(len(ch.Args), 1024))
				}
				args := slab[:len(ch.Args):len(ch.Args)]
				slab = slab[len(ch.Args):]
				for j, a := range ch.Args {
					args[j] = a
				}
				p.Do(ctx, args...)
			}
			for _, f := range pl.fields {
				last[f] = pl.pos
			}
		}
		if len(last) > 0 {
			if db != 0 {
				p.Select(ctx, 0)
				db = 0
			}
			vals := make([]any, 0, 2*len(last))
			for f, pos := range last {
				v := fenceValue(pos)
				fences[f] = v
				vals = append(vals, f, v)
			}
			p.HSet(ctx, s.fenceKey, vals...)
		}
		return nil
	})
	if err == nil {
		c.db, c.watching = db, false
		committed := make(map[string]fence, len(last))
		for f, pos := range last {
			committed[f] = fence{epoch: pos.Epoch, offset: pos.Offset, set: true}
		}
		s.remember(committed)
		return nil
	}
	if errors.Is(err, goredis.TxFailedErr) {
		c.watching = false
		// EXEC aborted: the WATCHed lease key changed since begin (renewed,
		// expired or taken). Nothing was applied; the retry tells which.
		c.db = db
		if s.lease != nil && s.lease.state.Load() == leaseLost {
			return s.lease.check(ctx, "", false)
		}
		return retry.Transient(fmt.Errorf("fencing lease %s changed during the transaction; retrying", LeaseKey(s.cfg.Channel)))
	}
	// Whether the fences moved is not known (the reply was lost, or EXEC
	// ran with a command refused): read them again.
	s.forget(fences)
	var rerr goredis.Error
	if errors.As(err, &rerr) && !isTransientReply(rerr) {
		// The server refused a command: name it and where it came from.
		c.db = db
		for _, cmd := range cmds {
			if cmd.Err() != nil && cmd.Name() != "exec" && cmd.Name() != "multi" {
				return fmt.Errorf("apply to target redis %s: %s (Txn at %s): %w", s.cfg.Addr, describe(cmd.Args()),
					positionOf(txns), cmd.Err())
			}
		}
		return fmt.Errorf("apply to target redis %s (Txns %s … %s): %w", s.cfg.Addr, txns[0].pos, txns[len(txns)-1].pos, err)
	}
	// The connection may be broken mid-transaction: start a new one.
	c.c.Close()
	c.c = nil
	return classify(s.cfg.Addr, fmt.Errorf("MULTI/EXEC of %d Txns: %w", len(txns), err))
}

func isTransientReply(err goredis.Error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "BUSY") || strings.HasPrefix(msg, "TRYAGAIN") ||
		strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "READONLY")
}

// describe renders the first words of a failed command for an error.
func describe(args []any) string {
	var b strings.Builder
	for i, a := range args[:min(len(args), 4)] {
		if i > 0 {
			b.WriteByte(' ')
		}
		if v, ok := a.([]byte); ok {
			a = string(v)
		}
		if i == 0 {
			b.WriteString(strings.ToUpper(fmt.Sprint(a)))
		} else {
			fmt.Fprintf(&b, "%q", fmt.Sprint(a))
		}
	}
	if len(args) > 4 {
		b.WriteString(" …")
	}
	return b.String()
}

// positionOf names the Txns a failed command came from.
func positionOf(txns []planned) string {
	if len(txns) == 1 {
		return txns[0].pos.String()
	}
	return txns[0].pos.String() + " … " + txns[len(txns)-1].pos.String()
}

// Fences returns the channel's fence fields, for tests and status.
func (s *Sink) Fences(ctx context.Context) (map[string]string, error) {
	return s.client.HGetAll(ctx, s.fenceKey).Result()
}

// Close releases the connections and the fencing lease. Calls after the
// first do nothing.
func (s *Sink) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if s.lease != nil {
		s.lease.release()
	}
	for i := 0; i < cap(s.conns); i++ {
		c := <-s.conns
		if c.c != nil {
			c.c.Close()
		}
	}
	return s.client.Close()
}
