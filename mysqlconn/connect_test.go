package mysqlconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/test/fakemysql"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/tlslink"
)

const password = "pw-Secr3t-never-in-clear"

// ask sends the server's request and, when the client answers, an OK.
func ask(send func(s *fakemysql.Session) error) fakemysql.Script {
	return func(s *fakemysql.Session) error {
		if err := send(s); err != nil {
			return err
		}
		if _, err := s.Read(); err != nil {
			return err
		}
		return s.OK()
	}
}

func okAtOnce(s *fakemysql.Session) error { return s.OK() }

// TestPasswordNeverInClear runs every way a server can ask for the
// password against the guard, over a plain link and over TLS, and checks
// what the fake server received: on the wire never the password in
// clear, and after a refusal no answer at all.
func TestPasswordNeverInClear(t *testing.T) {
	certs := harness.TLSCerts(t, "mysqlconn")
	other := harness.TLSCerts(t, "other")
	srvTLS, err := certs.ServerConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	verify, err := config.TLS{Enabled: true, CA: certs.CA}.Config("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	wrongCA, err := config.TLS{Enabled: true, CA: other.CA}.Config("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		plugin   string // the greeting's
		serveTLS bool
		client   *tls.Config
		script   fakemysql.Script
		want     error  // nil: the login succeeds
		msg      string // substring of the error
		answers  int    // packets the client sends after its handshake response
		// clearInside: the one answer is the password in clear inside TLS,
		// as a verified server may ask for it.
		clearInside bool
	}{
		{name: "switch to mysql_clear_password", plugin: "mysql_native_password",
			script: ask(func(s *fakemysql.Session) error { return s.Switch("mysql_clear_password", nil) }),
			want:   ErrPasswordExposed, msg: "switched the login to mysql_clear_password"},
		{name: "switch to dialog", plugin: "mysql_native_password",
			script: ask(func(s *fakemysql.Session) error { return s.Switch("dialog", []byte("Password: ")) }),
			want:   ErrPasswordExposed, msg: "in clear text"},
		{name: "switch to sha256_password", plugin: "mysql_native_password",
			script: ask(func(s *fakemysql.Session) error { return s.Switch("sha256_password", []byte("0123456789abcdefghij")) }),
			want:   ErrPasswordExposed, msg: "RSA key"},
		{name: "pre-4.1 switch", plugin: "mysql_native_password",
			script: ask(func(s *fakemysql.Session) error { return s.Write([]byte{0xfe}) }),
			want:   ErrPasswordExposed, msg: "mysql_old_password"},
		{name: "unknown plugin", plugin: "mysql_native_password",
			script: ask(func(s *fakemysql.Session) error { return s.Switch("auth_gssapi_client", nil) }),
			want:   ErrPasswordExposed, msg: "not one Hamal allows"},
		{name: "caching_sha2 full authentication", plugin: "caching_sha2_password",
			script: ask(func(s *fakemysql.Session) error { return s.MoreData(4) }),
			want:   ErrPasswordExposed, msg: "full password exchange"},
		{name: "sha256_password public key", plugin: "sha256_password",
			script: ask(func(s *fakemysql.Session) error {
				return s.MoreData([]byte("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n")...)
			}),
			want: ErrPasswordExposed, msg: "full password exchange"},
		{name: "native password", plugin: "mysql_native_password", script: okAtOnce},
		{name: "caching_sha2 fast authentication", plugin: "caching_sha2_password",
			script: func(s *fakemysql.Session) error {
				if err := s.MoreData(3); err != nil {
					return err
				}
				return s.OK()
			}},
		{name: "switch to ed25519", plugin: "mysql_native_password", answers: 1,
			script: ask(func(s *fakemysql.Session) error { return s.Switch("client_ed25519", bytes.Repeat([]byte{7}, 32)) })},
		{name: "switch to mysql_clear_password over TLS", plugin: "mysql_native_password", serveTLS: true, client: verify,
			script:  ask(func(s *fakemysql.Session) error { return s.Switch("mysql_clear_password", nil) }),
			answers: 1, clearInside: true},
		{name: "TLS on, server offers none", plugin: "mysql_native_password", client: verify, script: okAtOnce,
			want: tlslink.ErrTLS, msg: "offers no TLS"},
		{name: "TLS with another CA", plugin: "mysql_native_password", serveTLS: true, client: wrongCA, script: okAtOnce,
			want: tlslink.ErrTLS, msg: "set sink.tls.ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st *tls.Config
			if tc.serveTLS {
				st = srvTLS
			}
			srv := fakemysql.Start(t, tc.plugin, st, tc.script)
			conn, err := Connect(context.Background(), Target{Addr: srv.Addr, User: "hamal", Password: password, TLS: tc.client, Key: "sink.tls"})
			if conn != nil {
				conn.Close()
			}
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("login failed: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("error %v, want %v", err, tc.want)
			case tc.want != nil && !strings.Contains(err.Error(), tc.msg):
				t.Errorf("error %q lacks %q", err, tc.msg)
			}
			if errors.Is(err, ErrPasswordExposed) && !strings.Contains(err.Error(), "sink.tls.enabled: true") {
				t.Errorf("the refusal does not name the fix: %v", err)
			}
			var sess *fakemysql.Session
			select {
			case sess = <-srv.Ended():
			case <-time.After(30 * time.Second):
				t.Fatal("the fake server never saw the connection end")
			}
			if wire := srv.Wire(); bytes.Contains(wire, []byte(password)) {
				t.Errorf("the password crossed the network in clear: %q", wire)
			}
			if len(sess.Answers) != tc.answers {
				t.Errorf("the client answered %d packets after its handshake response (%q), want %d", len(sess.Answers), sess.Answers, tc.answers)
			}
			if tc.clearInside && (len(sess.Answers) != 1 || !bytes.Equal(bytes.TrimRight(sess.Answers[0], "\x00"), []byte(password)) || !sess.Encrypted) {
				t.Errorf("over TLS the server should get the password it asked for: %q (encrypted %v)", sess.Answers, sess.Encrypted)
			}
			if errs := srv.Errors(); len(errs) > 0 {
				t.Errorf("fake server: %v", errs)
			}
		})
	}
}

// TestLoginTimeout: a server that accepts and never greets fails the
// login in time with a message saying so, retryably.
func TestLoginTimeout(t *testing.T) {
	srv := fakemysql.StartSilent(t)
	_, err := Connect(context.Background(), Target{Addr: srv.Addr, User: "hamal", Password: password, Key: "source.tls", Timeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrHandshakeTimeout) || !strings.Contains(err.Error(), "did not complete the MySQL login within 300ms") {
		t.Fatalf("silent server: %v", err)
	}
}
