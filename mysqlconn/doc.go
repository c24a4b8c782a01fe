// Package mysqlconn opens the client connections of every Hamal path to
// MySQL/MariaDB (binlog reader, metadata and preflight, heartbeat, sink,
// hamal check, hamal migrate, hamal failover-report) the one way: TLS
// when the tls block is on and never clear text then, the password never
// sent where a man in the middle could read it, and a handshake that
// cannot hang.
//
// go-mysql v1.16.0 refuses mysql_clear_password as the server's initial
// plugin but follows a server's auth switch to it (client/resp.go,
// handleAuthResult, which hands any plugin name to genAuthResponse in
// client/auth.go, whose AUTH_CLEAR_PASSWORD case returns the password as
// it is). It has no hook there, so Guard wraps the network connection
// underneath it instead and reads the server's side of the handshake
// before go-mysql does. On a plain (non-TLS) link it refuses, before
// go-mysql could answer:
//
//   - an auth switch to any plugin but mysql_native_password,
//     caching_sha2_password (its scramble) and client_ed25519: that is
//     mysql_clear_password, sha256_password, mysql_old_password, dialog
//     and anything unknown;
//   - caching_sha2_password's full authentication and sha256_password's
//     public key: over a plain link go-mysql would encrypt the password
//     with an RSA key the server sends unauthenticated, which a man in
//     the middle replaces with its own.
//
// A refused handshake is ErrPasswordExposed (fatal) and nothing of the
// password has left. Over TLS the server is verified (unless skip_verify)
// and every plugin go-mysql knows is allowed. A greeting without TLS
// while the tls block is on is tlslink.NotOffered (fatal).
//
// Usage sketch:
//
//	conn, err := mysqlconn.Connect(ctx, mysqlconn.Target{Addr: addr, User: user,
//		Password: pw, TLS: tlsConfig, Key: "sink.tls"})
//
// Contracts: Connect bounds the whole login (greeting, TLS, auth) by
// Target.Timeout; a Dialer (for go-mysql's BinlogSyncer, which dials on
// its own) guards each connection it opens and Explain returns the real
// cause of a failed connect, since go-mysql flattens the errors of its
// reads into text.
package mysqlconn
