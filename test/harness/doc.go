// Package harness starts throwaway servers for Hamal's integration tests,
// benchmarks and demo: real MariaDB instances on free loopback ports, each
// with its own data directory, always torn down afterwards.
//
// When mariadbd is missing and the process runs as root, the harness installs
// Debian's mariadb-server with apt-get; otherwise it fails with a message
// naming the package to install.
//
// Usage sketch (tests):
//
//	src := harness.MariaDB(t, harness.Options{ServerID: 1})
//	conn := src.Conn(t)
//	src.MustExec(t, "CREATE DATABASE app")
//
// Outside tests (the demo), StartMariaDB returns a server that the caller
// stops with Stop.
package harness
