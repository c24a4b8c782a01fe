// Command kafkabroker runs a one-broker Kafka cluster (kfake) on a
// loopback port, with TLS and SASL when asked, for tests that run
// clients in other processes (hamal, kcat). See kafkatest.ServeSecure.
//
// It prints "ready <host:port>" once listening and runs until killed.
//
//	kafkabroker -listen 127.0.0.1:0 -tls-cert s.pem -tls-key s-key.pem \
//	    -user SCRAM-SHA-512:hamal:secret -topics hamal.app.t -partitions 2
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hamal-replication/hamal/test/kafkatest"
)

type users []kafkatest.User

func (u *users) String() string { return fmt.Sprint(len(*u)) }
func (u *users) Set(v string) error {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 {
		return fmt.Errorf("%q: want MECHANISM:USER:PASSWORD", v)
	}
	*u = append(*u, kafkatest.User{Mechanism: parts[0], Name: parts[1], Password: parts[2]})
	return nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on")
	cert := flag.String("tls-cert", "", "server certificate (PEM): take TLS only")
	key := flag.String("tls-key", "", "key of -tls-cert (PEM)")
	topics := flag.String("topics", "", "comma-separated topics to create")
	partitions := flag.Int("partitions", 1, "partitions per topic (and per auto-created topic)")
	autoCreate := flag.Bool("auto-create", false, "let producers create topics")
	var us users
	flag.Var(&us, "user", "a SASL superuser MECHANISM:USER:PASSWORD (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); repeatable")
	flag.Parse()

	o := kafkatest.SecureOptions{Addr: *listen, Users: us, Opts: []kafkatest.Opt{kfake.DefaultNumPartitions(*partitions)}}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kafkabroker:", err)
			os.Exit(2)
		}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	if *topics != "" {
		o.Opts = append(o.Opts, kfake.SeedTopics(int32(*partitions), strings.Split(*topics, ",")...))
	}
	if *autoCreate {
		o.Opts = append(o.Opts, kfake.AllowAutoTopicCreation())
	}
	c, err := kafkatest.ServeSecure(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafkabroker:", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Println("ready", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}
