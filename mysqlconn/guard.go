package mysqlconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamal-replication/hamal/tlslink"
)

// ErrPasswordExposed marks a login Hamal refused because the server asked
// for the password in a form a man in the middle could read. It is fatal.
var ErrPasswordExposed = errors.New("mysql login refused: it would expose the password")

// ErrHandshakeTimeout marks a server that accepted the connection but did
// not finish the login in time (retryable).
var ErrHandshakeTimeout = errors.New("mysql handshake timed out")

// Plugins allowed on a plain link: none of them sends the password or
// something a man in the middle can turn into it without a brute force.
var plainPlugins = map[string]bool{
	"mysql_native_password": true,
	"caching_sha2_password": true, // its scramble; full authentication is refused below
	"client_ed25519":        true,
}

// Protocol bytes the guard reads.
const (
	headerOK       = 0x00
	headerMoreData = 0x01 // caching_sha2_password / sha256_password exchange
	headerSwitch   = 0xfe // auth switch request
	headerErr      = 0xff
	fastAuthOK     = 0x03 // caching_sha2_password: the server's cache had the account
	clientSSL      = 0x0800
)

type phase uint8

const (
	phaseGreeting phase = iota + 1
	phaseAuth
	phaseDone
)

// Conn is a network connection to a MySQL server whose handshake Guard
// inspects; once the login ended (or TLS took over) it is the underlying
// connection.
type Conn struct {
	net.Conn
	tls  bool
	key  string
	addr string

	phase phase
	buf   []byte // packets read and inspected, not yet handed to go-mysql
	err   error  // the refusal, sticky

	timer    *time.Timer
	timedOut atomic.Bool
	timeout  time.Duration
	mu       sync.Mutex // guards err for Err from other goroutines
}

// Guard wraps conn, a fresh connection to a MySQL server. tlsOn says the
// client will ask for TLS (go-mysql's SetTLSConfig); key names the tls
// block in messages. With timeout > 0 the login must finish within it
// (see Done), else the connection is closed and reads fail with
// ErrHandshakeTimeout.
func Guard(conn net.Conn, tlsOn bool, key string, timeout time.Duration) *Conn {
	c := &Conn{Conn: conn, tls: tlsOn, key: key, addr: conn.RemoteAddr().String(), phase: phaseGreeting, timeout: timeout}
	if timeout > 0 {
		c.timer = time.AfterFunc(timeout, func() {
			c.timedOut.Store(true)
			conn.Close()
		})
	}
	return c
}

// Done stops the login deadline once the caller's login succeeded.
func (c *Conn) Done() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

// Err returns why the guard refused the login, nil when it did not.
func (c *Conn) Err() error {
	if c.timedOut.Load() {
		return fmt.Errorf("%w: %s accepted the connection but did not complete the MySQL login within %s (is it a MySQL server, and does it answer on this port?)",
			ErrHandshakeTimeout, c.addr, c.timeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Conn) Read(p []byte) (int, error) {
	if c.phase == phaseDone && len(c.buf) == 0 {
		n, err := c.Conn.Read(p)
		if err != nil && c.timedOut.Load() {
			err = c.Err()
		}
		return n, err
	}
	if len(c.buf) == 0 {
		if err := c.nextPacket(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// nextPacket reads one packet from the server and decides on it.
func (c *Conn) nextPacket() error {
	if err := c.Err(); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c.Conn, hdr[:]); err != nil {
		return c.readErr(err)
	}
	size := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	pkt := make([]byte, 4+size)
	copy(pkt, hdr[:])
	if _, err := io.ReadFull(c.Conn, pkt[4:]); err != nil {
		return c.readErr(err)
	}
	if err := c.inspect(pkt[4:]); err != nil {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.Conn.Close()
		return err
	}
	c.buf = pkt
	return nil
}

func (c *Conn) readErr(err error) error {
	if c.timedOut.Load() {
		return c.Err()
	}
	return err
}

func (c *Conn) inspect(payload []byte) error {
	if len(payload) == 0 {
		return nil
	}
	switch c.phase {
	case phaseGreeting:
		c.phase = phaseAuth
		if c.tls {
			// What follows is TLS, which the guard cannot (and need not)
			// read: the server is verified and the link encrypted.
			c.phase = phaseDone
		}
		if payload[0] == headerErr {
			c.phase = phaseDone
			return nil
		}
		if c.tls && greetingCaps(payload)&clientSSL == 0 {
			return tlslink.NotOffered(c.key, c.addr, fmt.Sprintf("enable TLS on the server (ssl_cert, ssl_key; MariaDB: ssl=ON), or set %s.enabled: false if the link may be plain", c.key))
		}
	case phaseAuth:
		switch payload[0] {
		case headerOK, headerErr:
			c.phase = phaseDone
		case headerSwitch:
			plugin := "mysql_old_password" // a bare 0xfe is the pre-4.1 switch
			if i := bytes.IndexByte(payload[1:], 0); i >= 0 {
				plugin = string(payload[1 : 1+i])
			}
			if !plainPlugins[plugin] {
				return c.refuse(fmt.Sprintf("the server switched the login to %s", plugin), describePlugin(plugin))
			}
		case headerMoreData:
			if len(payload) == 2 && payload[1] == fastAuthOK {
				return nil
			}
			return c.refuse("the server asked for a full password exchange (caching_sha2_password full authentication or sha256_password)",
				"over a plain connection that sends the password encrypted with an RSA key the server sends unauthenticated, which a man in the middle replaces with its own")
		}
	}
	return nil
}

func (c *Conn) refuse(what, why string) error {
	return fmt.Errorf("%w: %s at %s: %s; Hamal refused and sent nothing of the password. Fix: enable TLS on this link (%s.enabled: true, with %s.ca), or give the account mysql_native_password or ed25519 authentication",
		ErrPasswordExposed, what, c.addr, why, c.key, c.key)
}

func describePlugin(plugin string) string {
	switch plugin {
	case "mysql_clear_password", "dialog":
		return "that plugin sends the password in clear text"
	case "sha256_password":
		return "over a plain connection that plugin sends the password encrypted with an RSA key the server sends unauthenticated"
	case "mysql_old_password":
		return "that plugin's hash is broken"
	}
	return "that plugin is not one Hamal allows over a plain connection (mysql_native_password, caching_sha2_password, client_ed25519)"
}

// greetingCaps returns the lower 16 capability bits of a protocol-10
// greeting, 0 when it is too short to hold them.
func greetingCaps(p []byte) uint32 {
	if p[0] != 10 {
		return 0
	}
	nul := bytes.IndexByte(p[1:], 0)
	if nul < 0 {
		return 0
	}
	pos := 1 + nul + 1 + 4 + 8 + 1 // version, NUL, connection id, scramble part 1, filler
	if len(p) < pos+2 {
		return 0
	}
	return uint32(binary.LittleEndian.Uint16(p[pos:]))
}
