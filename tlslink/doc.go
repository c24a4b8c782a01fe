// Package tlslink owns what every encrypted link of Hamal shares beyond
// its crypto/tls configuration (which config.TLS builds): a client
// handshake that cannot hang, and errors that name what failed.
//
// Contracts:
//
//   - Client runs the TLS client handshake on an established connection
//     under a deadline; a server that does not answer within it is
//     ErrHandshakeTimeout (retryable: a slow link looks the same), a
//     server that answers with something other than TLS is ErrTLS
//     (fatal: a plain-text port, not an outage).
//   - Explain turns a failure of the handshake or of the certificate
//     check into an *Error naming the cause and the tls key to fix; it
//     marks it with ErrTLS so that callers treat it as fatal (a wrong CA
//     does not heal by retrying). Other errors are returned unchanged.
//   - NotOffered is the error of a link whose tls block is on while the
//     server offers no TLS: Hamal never falls back to clear text.
//
// Usage sketch (a source dialing its server):
//
//	conn, err := dialer.DialContext(ctx, "tcp", addr)
//	tconn, err := tlslink.Client(ctx, conn, tlsConfig, 10*time.Second)
//	if errors.Is(err, tlslink.ErrTLS) { … fatal: the message says what to fix }
package tlslink
