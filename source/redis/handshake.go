package redis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/tlslink"
)

// The link to the master: the go-redis client, connection error
// classification, the replica handshake and PSYNC, and the commands the
// source writes to the master (REPLCONF ACK).

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

func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimRight(line, "\r")
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}
