package tlslink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// ErrTLS marks a TLS link that cannot be set up as configured: a
// certificate the configured CA does not sign, a server name the
// certificate does not hold, a server that speaks no TLS. It is fatal:
// retrying does not fix it.
var ErrTLS = errors.New("tls link refused")

// ErrHandshakeTimeout marks a TLS handshake the server did not answer
// in time. It is not ErrTLS: an overloaded server or a slow link looks
// the same, so callers retry it.
var ErrHandshakeTimeout = errors.New("tls handshake timed out")

// Error is a TLS failure with its cause and fix.
type Error struct {
	Addr  string // the server
	Cause string // what failed, in words
	Fix   string // what to change, naming the tls key
	Err   error  // the underlying error
}

func (e *Error) Error() string {
	return fmt.Sprintf("TLS to %s: %s (%v); fix: %s", e.Addr, e.Cause, e.Err, e.Fix)
}

// Unwrap returns the underlying error and ErrTLS.
func (e *Error) Unwrap() []error { return []error{e.Err, ErrTLS} }

// Explain returns err as an *Error when it is a failure of a TLS
// handshake or certificate check with addr, naming the cause and the key
// to fix under key (e.g. "source.tls"); any other error is returned as it
// is. An err that is already an *Error is returned unchanged.
func Explain(key, addr string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	cause, fix, ok := describe(key, err)
	if !ok {
		return err
	}
	return &Error{Addr: addr, Cause: cause, Fix: fix, Err: err}
}

func describe(key string, err error) (cause, fix string, ok bool) {
	var (
		unknown   x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		header    tls.RecordHeaderError
		alert     tls.AlertError
		verifyErr *tls.CertificateVerificationError
		opErr     *net.OpError
	)
	switch {
	case errors.As(err, &unknown):
		return "the server's certificate is not signed by a CA Hamal trusts",
			fmt.Sprintf("set %s.ca to the PEM file of the CA that signed the server's certificate (without %s.ca the system's CAs are used)", key, key), true
	case errors.As(err, &hostname):
		return fmt.Sprintf("the server's certificate is not valid for %q", hostname.Host),
			fmt.Sprintf("set %s.server_name to a name the certificate holds, or connect by that name", key), true
	case errors.As(err, &invalid):
		return "the server's certificate is not valid: " + invalidReason(invalid),
			"renew or reissue the server's certificate", true
	case errors.As(err, &verifyErr):
		return "the server's certificate failed verification",
			fmt.Sprintf("check %s.ca and %s.server_name against the server's certificate", key, key), true
	case errors.As(err, &header):
		return "the server does not speak TLS on this port (it answered in plain text)",
			fmt.Sprintf("enable TLS on the server, point the address at its TLS port, or set %s.enabled: false if the link may be plain", key), true
	case errors.As(err, &alert) || errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert from the server (crypto/tls reports those as a
		// net.OpError of Op "remote error").
		return "the server refused the TLS handshake",
			fmt.Sprintf("if the server requires a client certificate, set %s.cert and %s.key to one signed by a CA the server trusts; check that both sides share a TLS version", key, key), true
	}
	return "", "", false
}

func invalidReason(e x509.CertificateInvalidError) string {
	switch e.Reason {
	case x509.Expired:
		return "expired or not yet valid"
	case x509.NotAuthorizedToSign:
		return "signed by a certificate that is not a CA"
	case x509.IncompatibleUsage:
		return "not issued for server authentication"
	}
	return e.Error()
}

// NotOffered is the error of a link whose tls block is on while the server
// at addr offers no TLS. It is ErrTLS: Hamal does not fall back to clear
// text.
func NotOffered(key, addr, how string) error {
	return &Error{Addr: addr, Cause: "the server offers no TLS, and " + key + " is on: Hamal does not fall back to clear text",
		Fix: how, Err: errors.New("tls not offered by the server")}
}

// Client runs the TLS client handshake over conn within timeout (and
// ctx), returning the encrypted connection. On failure conn is closed and
// the error is Explain's (ErrTLS) or wraps ErrHandshakeTimeout; key names
// the tls block in messages.
func Client(ctx context.Context, conn net.Conn, cfg *tls.Config, timeout time.Duration, key string) (*tls.Conn, error) {
	addr := conn.RemoteAddr().String()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tconn := tls.Client(conn, cfg)
	if err := tconn.HandshakeContext(ctx); err != nil {
		conn.Close()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%w: no TLS answer from %s within %s: the server may not take TLS on this port (check the address, that the server's TLS port is this one, or %s.enabled), or the link is very slow: %v",
				ErrHandshakeTimeout, addr, timeout, key, err)
		}
		return nil, Explain(key, addr, err)
	}
	return tconn, nil
}

// Dial connects to addr over TCP and, with cfg set, runs the TLS client
// handshake on it (Client): a plain connection only when cfg is nil.
// timeout bounds the dial and the handshake each.
func Dial(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration, key string) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || cfg == nil {
		return conn, err
	}
	return Client(ctx, conn, cfg, timeout, key)
}
