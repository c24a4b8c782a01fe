package mysqlconn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/tlslink"
)

// DefaultTimeout bounds a login: dial, greeting, TLS and authentication.
const DefaultTimeout = 10 * time.Second

// Target is one server and account to log in to.
type Target struct {
	Addr, User, Password string
	DB                   string      // default database; "" for none
	TLS                  *tls.Config // nil: a plain link
	// Key names the tls block in messages, e.g. "sink.tls".
	Key string
	// Timeout bounds the login; 0: DefaultTimeout.
	Timeout time.Duration
}

// Connect logs in to t. A refused login is ErrPasswordExposed, a server
// without TLS while t.TLS is set and a failed certificate check are
// tlslink.ErrTLS, a login that did not finish in time is
// ErrHandshakeTimeout; opts are go-mysql's (applied before the TLS
// config).
func Connect(ctx context.Context, t Target, opts ...client.Option) (*client.Conn, error) {
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := &Dialer{TLS: t.TLS != nil, Key: t.Key, Timeout: timeout}
	if t.TLS != nil {
		opts = append(opts, func(c *client.Conn) error { c.SetTLSConfig(t.TLS); return nil })
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := client.ConnectWithDialer(dctx, "", t.Addr, t.User, t.Password, t.DB, d.Dial, opts...)
	if err != nil {
		err = d.Explain(t.Addr, err)
		d.done()
		return nil, err
	}
	d.done()
	return conn, nil
}

// Dialer opens guarded connections for go-mysql (client.Dialer): pass
// Dial to client.ConnectWithDialer or replication.BinlogSyncerConfig.
type Dialer struct {
	TLS bool   // the client asks for TLS on these connections
	Key string // names the tls block in messages
	// Timeout bounds each login (Guard); 0: no bound from the guard (the
	// caller sets deadlines).
	Timeout time.Duration
	// Next dials the network; nil: net.Dialer with Timeout.
	Next client.Dialer

	mu   sync.Mutex
	last *Conn
}

// Dial implements client.Dialer.
func (d *Dialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	next := d.Next
	if next == nil {
		nd := &net.Dialer{Timeout: d.Timeout}
		next = nd.DialContext
	}
	c, err := next(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	g := Guard(c, d.TLS, d.Key, d.Timeout)
	d.mu.Lock()
	d.last = g
	d.mu.Unlock()
	return g, nil
}

func (d *Dialer) done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last != nil {
		d.last.Done()
	}
}

// Explain returns the real cause of err, an error of a connect through
// d to addr: the guard's refusal or timeout (go-mysql keeps only their
// text), a TLS failure explained (tlslink.Explain), or err.
func (d *Dialer) Explain(addr string, err error) error {
	d.mu.Lock()
	last := d.last
	d.mu.Unlock()
	if last != nil {
		if gerr := last.Err(); gerr != nil {
			return gerr
		}
	}
	if errors.Is(err, ErrPasswordExposed) || errors.Is(err, tlslink.ErrTLS) {
		return err
	}
	return tlslink.Explain(d.Key, addr, err)
}
