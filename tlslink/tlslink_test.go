package tlslink

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/test/harness"
)

// listen serves each connection with serve on a loopback port.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return l.Addr().String()
}

// TestClient: a TLS handshake against a verified server succeeds; each
// way it can fail names its cause and the key to fix, and only a silent
// server is retryable.
func TestClient(t *testing.T) {
	good := harness.TLSCerts(t, "good")
	other := harness.TLSCerts(t, "other")
	srvCfg, err := good.ServerConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	mtlsCfg, err := good.ServerConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	echo := func(cfg *tls.Config) func(net.Conn) {
		return func(c net.Conn) {
			tc := tls.Server(c, cfg)
			if tc.Handshake() != nil {
				return
			}
			_, _ = io.Copy(tc, tc)
		}
	}
	tlsAddr := listen(t, echo(srvCfg))
	mtlsAddr := listen(t, echo(mtlsCfg))
	plainAddr := listen(t, func(c net.Conn) { _, _ = c.Write([]byte("-ERR unknown command\r\n")); time.Sleep(time.Second) })
	silentAddr := listen(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })

	for _, tc := range []struct {
		name      string
		addr      string
		block     config.TLS
		timeout   time.Duration
		wantTLS   bool   // errors.Is ErrTLS
		wantRetry bool   // errors.Is ErrHandshakeTimeout
		want      string // substring of the message
	}{
		{name: "verified", addr: tlsAddr, block: config.TLS{Enabled: true, CA: good.CA}},
		{name: "client certificate", addr: mtlsAddr, block: config.TLS{Enabled: true, CA: good.CA, Cert: good.Client, Key: good.ClientKey}},
		{name: "wrong CA", addr: tlsAddr, block: config.TLS{Enabled: true, CA: other.CA}, wantTLS: true,
			want: "not signed by a CA Hamal trusts"},
		{name: "system CAs", addr: tlsAddr, block: config.TLS{Enabled: true}, wantTLS: true, want: "source.tls.ca"},
		{name: "server name", addr: tlsAddr, block: config.TLS{Enabled: true, CA: good.CA, ServerName: "db.example.com"}, wantTLS: true,
			want: `not valid for "db.example.com"`},
		{name: "plain-text server", addr: plainAddr, block: config.TLS{Enabled: true, CA: good.CA}, wantTLS: true,
			want: "does not speak TLS on this port"},
		{name: "silent server", addr: silentAddr, block: config.TLS{Enabled: true, CA: good.CA}, timeout: 300 * time.Millisecond,
			wantRetry: true, want: "no TLS answer from " + silentAddr + " within 300ms"},
		{name: "skip verify", addr: tlsAddr, block: config.TLS{Enabled: true, CA: other.CA, SkipVerify: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.block.Config("127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			tconn, err := Client(context.Background(), conn, cfg, timeout, "source.tls")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer tconn.Close()
				// The link carries data: the echo server returns it.
				if _, err := tconn.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 4)
				if _, err := io.ReadFull(tconn, buf); err != nil || string(buf) != "ping" {
					t.Fatalf("echo %q %v", buf, err)
				}
				return
			}
			if err == nil {
				tconn.Close()
				t.Fatal("handshake succeeded")
			}
			if errors.Is(err, ErrTLS) != tc.wantTLS || errors.Is(err, ErrHandshakeTimeout) != tc.wantRetry {
				t.Errorf("ErrTLS %v, ErrHandshakeTimeout %v; want %v, %v: %v", errors.Is(err, ErrTLS), errors.Is(err, ErrHandshakeTimeout), tc.wantTLS, tc.wantRetry, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

// TestClientCertificateRequired: under TLS 1.3 a server that requires a
// client certificate refuses it after the client's handshake, on the
// first read; Explain names the keys.
func TestClientCertificateRequired(t *testing.T) {
	good := harness.TLSCerts(t, "good")
	srvCfg, err := good.ServerConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	addr := listen(t, func(c net.Conn) {
		tc := tls.Server(c, srvCfg)
		_ = tc.Handshake()
		_, _ = io.Copy(tc, tc)
	})
	cfg, err := config.TLS{Enabled: true, CA: good.CA}.Config("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tconn, err := Client(context.Background(), conn, cfg, 10*time.Second, "sink.tls")
	if err == nil {
		defer tconn.Close()
		_, _ = tconn.Write([]byte("ping"))
		_, err = tconn.Read(make([]byte, 4))
		err = Explain("sink.tls", addr, err)
	}
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "sink.tls.cert and sink.tls.key") {
		t.Errorf("without a client certificate: %v", err)
	}
}

// TestExplain: errors that are not TLS failures pass through unchanged.
func TestExplain(t *testing.T) {
	plain := errors.New("connection refused")
	if got := Explain("sink.tls", "db:1", plain); got != plain {
		t.Errorf("Explain changed a non-TLS error: %v", got)
	}
	if Explain("sink.tls", "db:1", nil) != nil {
		t.Error("Explain(nil) is not nil")
	}
	e := NotOffered("sink.tls", "db:1", "enable TLS on the server")
	if !errors.Is(e, ErrTLS) || !strings.Contains(e.Error(), "does not fall back to clear text") {
		t.Errorf("NotOffered: %v", e)
	}
	if again := Explain("sink.tls", "db:1", e); again != e {
		t.Errorf("Explain wrapped an *Error again: %v", again)
	}
}
