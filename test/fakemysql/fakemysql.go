package fakemysql

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Capability bits of the greeting.
const (
	capLongPassword     = 0x00000001
	capProtocol41       = 0x00000200
	capSSL              = 0x00000800
	capTransactions     = 0x00002000
	capSecureConnection = 0x00008000
	capPluginAuth       = 0x00080000
)

// Script is the server's side of one login after the client's handshake
// response: it writes packets and reads the client's answers.
type Script func(s *Session) error

// Server is a listening fake server.
type Server struct {
	Addr string
	// Plugin is the auth plugin the greeting names.
	Plugin string
	// TLS, when set, makes the greeting offer TLS and serves it when the
	// client asks.
	TLS    *tls.Config
	silent bool
	script Script

	l     net.Listener
	ended chan *Session
	mu    sync.Mutex
	wire  bytes.Buffer // everything clients sent, as it crossed the network
	errs  []error
}

// Start listens on loopback and serves every connection with script.
func Start(t testing.TB, plugin string, tlsConfig *tls.Config, script Script) *Server {
	t.Helper()
	return start(t, plugin, tlsConfig, script, false)
}

// StartSilent listens on loopback, accepts connections and never answers.
func StartSilent(t testing.TB) *Server {
	t.Helper()
	return start(t, "", nil, nil, true)
}

func start(t testing.TB, plugin string, tlsConfig *tls.Config, script Script, silent bool) *Server {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: l.Addr().String(), Plugin: plugin, TLS: tlsConfig, script: script, silent: silent, l: l, ended: make(chan *Session, 64)}
	t.Cleanup(func() { l.Close() })
	go s.serve()
	return s
}

// Wire returns every byte clients sent so far, as it crossed the network.
func (s *Server) Wire() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.wire.Bytes())
}

// Ended yields each session once the client closed its connection.
func (s *Server) Ended() <-chan *Session { return s.ended }

// Errors returns the script errors so far (a client that hung up early
// is not one).
func (s *Server) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func (s *Server) serve() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if s.silent {
				_, _ = io.Copy(io.Discard, &recorder{Conn: c, s: s})
				return
			}
			sess := &Session{server: s, raw: c, conn: &recorder{Conn: c, s: s}}
			err := sess.run()
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
				s.mu.Lock()
				s.errs = append(s.errs, err)
				s.mu.Unlock()
			}
			// Until the client hangs up: everything it sends is recorded.
			_, _ = io.Copy(io.Discard, sess.conn)
			select {
			case s.ended <- sess:
			default:
			}
		}()
	}
}

// recorder records what the client sent on the network.
type recorder struct {
	net.Conn
	s *Server
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.s.mu.Lock()
	r.s.wire.Write(p[:n])
	r.s.mu.Unlock()
	return n, err
}

// Session is one client connection.
type Session struct {
	server *Server
	raw    net.Conn
	conn   net.Conn // the recorder, or TLS over it
	seq    byte
	// Response is the client's handshake response payload (after TLS).
	Response []byte
	// Scramble is the 20-byte salt the greeting sent.
	Scramble []byte
	// Encrypted is true once TLS carries the session.
	Encrypted bool
	// Answers are the packets the client sent after its handshake
	// response, as the server read them (decrypted under TLS).
	Answers   [][]byte
	answering bool
}

func (s *Session) run() error {
	s.Scramble = []byte("0123456789abcdefghij")
	if err := s.Write(s.greeting()); err != nil {
		return err
	}
	resp, err := s.Read()
	if err != nil {
		return err
	}
	if len(resp) == 32 && binary.LittleEndian.Uint32(resp)&capSSL != 0 && s.server.TLS != nil {
		tc := tls.Server(s.conn, s.server.TLS)
		if err := tc.Handshake(); err != nil {
			return nil // the client refused the server: its test says why
		}
		s.conn, s.Encrypted = tc, true
		if resp, err = s.Read(); err != nil {
			return err
		}
	}
	s.Response, s.answering = resp, true
	return s.server.script(s)
}

func (s *Session) greeting() []byte {
	caps := uint32(capLongPassword | capProtocol41 | capTransactions | capSecureConnection | capPluginAuth)
	if s.server.TLS != nil {
		caps |= capSSL
	}
	b := []byte{10}
	b = append(b, "5.7.99-fake"...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 7)
	b = append(b, s.Scramble[:8]...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps))
	b = append(b, 33)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps>>16))
	b = append(b, 21)
	b = append(b, make([]byte, 10)...)
	b = append(b, s.Scramble[8:]...)
	b = append(b, 0)
	b = append(b, s.server.Plugin...)
	return append(b, 0)
}

// Write sends one packet with the next sequence number.
func (s *Session) Write(payload []byte) error {
	hdr := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), s.seq}
	s.seq++
	_, err := s.conn.Write(append(hdr, payload...))
	return err
}

// Read reads one packet from the client.
func (s *Session) Read() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(s.conn, hdr[:]); err != nil {
		return nil, err
	}
	s.seq = hdr[3] + 1
	p := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	if _, err := io.ReadFull(s.conn, p); err != nil {
		return nil, err
	}
	if s.answering {
		s.Answers = append(s.Answers, p)
	}
	return p, nil
}

// OK sends an OK packet.
func (s *Session) OK() error { return s.Write([]byte{0, 0, 0, 2, 0, 0, 0}) }

// Switch sends an auth switch request to plugin with data.
func (s *Session) Switch(plugin string, data []byte) error {
	b := append([]byte{0xfe}, plugin...)
	b = append(b, 0)
	return s.Write(append(b, data...))
}

// MoreData sends an AuthMoreData packet.
func (s *Session) MoreData(data ...byte) error { return s.Write(append([]byte{1}, data...)) }
