// Command ferretdb runs an embedded FerretDB (SQLite backend) on loopback
// for Hamal's MongoDB sink tests: a server speaking the MongoDB wire
// protocol that can run on machines where mongod cannot be installed. It
// lives in its own module so FerretDB's dependencies stay out of Hamal's.
//
// It prints "ready <mongodb URI>" once listening and runs until killed.
//
//	ferretdb -dir /tmp/f -listen 127.0.0.1:27018
//	ferretdb -dir /tmp/f -listen 127.0.0.1:27018 -tls-cert s.pem -tls-key s-key.pem  # TLS only
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	dir := flag.String("dir", "", "SQLite data directory (created if missing)")
	listen := flag.String("listen", "127.0.0.1:27018", "host:port to listen on")
	tlsCert := flag.String("tls-cert", "", "server certificate (PEM): listen with TLS only")
	tlsKey := flag.String("tls-key", "", "key of -tls-cert (PEM)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "ferretdb: -dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	listener := ferretdb.ListenerConfig{TCP: *listen}
	if *tlsCert != "" {
		listener = ferretdb.ListenerConfig{TLS: *listen, TLSCertFile: *tlsCert, TLSKeyFile: *tlsKey}
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	for i := 0; i < 200; i++ {
		if c, err := net.DialTimeout("tcp", *listen, 100*time.Millisecond); err == nil {
			c.Close()
			fmt.Println("ready", f.MongoDBURI())
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := <-done; err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}
