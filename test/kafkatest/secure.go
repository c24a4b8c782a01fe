package kafkatest

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// User is a SASL user of a secure cluster.
type User struct {
	Mechanism      string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Name, Password string
}

// SecureOptions configures ServeSecure.
type SecureOptions struct {
	// Addr is the loopback address to listen on ("127.0.0.1:0": any port).
	Addr string
	// TLS, when set, is the only way in: the listener takes TLS.
	TLS *tls.Config
	// Users turn SASL on; each is a superuser.
	Users []User
	// Opts are more cluster options (topics, auto-creation).
	Opts []Opt
}

// ServeSecure runs a one-broker kfake cluster that takes TLS and SASL as
// configured, for Hamal's clients and librdkafka's (kcat) alike: kfake
// advertises SaslHandshake v1 only, and librdkafka asks for v0 to be in
// the range before it authenticates, so the ApiVersions answers are
// rewritten to advertise 0–1 (the handshake itself then runs at v1).
func ServeSecure(o SecureOptions) (*kfake.Cluster, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	opts := append([]Opt{kfake.NumBrokers(1), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		l, err := net.Listen(network, o.Addr)
		if err != nil {
			return nil, err
		}
		if o.TLS != nil {
			l = tls.NewListener(l, o.TLS)
		}
		return handshakeRangeListener{l}, nil
	})}, o.Opts...)
	if len(o.Users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range o.Users {
			opts = append(opts, kfake.Superuser(u.Mechanism, u.Name, u.Password))
		}
	}
	return kfake.NewCluster(opts...)
}

type handshakeRangeListener struct{ net.Listener }

func (l handshakeRangeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeRangeConn{Conn: c, versions: map[int32]int16{}}, nil
}

// handshakeRangeConn watches the requests a client sends (for the
// correlation ids of ApiVersions requests and their versions) and
// rewrites the matching responses.
type handshakeRangeConn struct {
	net.Conn
	mu       sync.Mutex
	in, out  []byte          // partial request / response frames
	versions map[int32]int16 // correlation id → ApiVersions request version
}

func (c *handshakeRangeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in = append(c.in, p[:n]...)
	for len(c.in) >= 4 {
		size := int(binary.BigEndian.Uint32(c.in))
		if len(c.in) < 4+size {
			break
		}
		if frame := c.in[4 : 4+size]; len(frame) >= 8 && binary.BigEndian.Uint16(frame) == 18 {
			c.versions[int32(binary.BigEndian.Uint32(frame[4:]))] = int16(binary.BigEndian.Uint16(frame[2:]))
		}
		c.in = c.in[4+size:]
	}
	c.mu.Unlock()
	return n, err
}

func (c *handshakeRangeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out = append(c.out, p...)
	var send bytes.Buffer
	for len(c.out) >= 8 {
		size := int(binary.BigEndian.Uint32(c.out))
		if len(c.out) < 4+size {
			break
		}
		frame := c.out[:4+size]
		corr := int32(binary.BigEndian.Uint32(frame[4:]))
		if v, ok := c.versions[corr]; ok {
			delete(c.versions, corr)
			frame = widenHandshake(frame, v)
		}
		send.Write(frame)
		c.out = c.out[4+size:]
	}
	c.mu.Unlock()
	if send.Len() > 0 {
		if _, err := c.Conn.Write(send.Bytes()); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// widenHandshake returns an ApiVersions response frame advertising
// SaslHandshake from v0; the frame unchanged when it cannot be read.
func widenHandshake(frame []byte, version int16) []byte {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	body := frame[8:] // ApiVersions responses keep header v0: size, correlation id
	if err := resp.ReadFrom(body); err != nil {
		return frame
	}
	for i := range resp.ApiKeys {
		if resp.ApiKeys[i].ApiKey == 17 && resp.ApiKeys[i].MinVersion > 0 {
			resp.ApiKeys[i].MinVersion = 0
		}
	}
	out := resp.AppendTo(append([]byte{0, 0, 0, 0}, frame[4:8]...))
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// String names the cluster's security for messages.
func (o SecureOptions) String() string {
	return fmt.Sprintf("tls=%v sasl users=%d", o.TLS != nil, len(o.Users))
}
