package mysql

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
)

// A link that silently drops everything (no FIN, no RST) is noticed by
// the watchdog: Next returns a transient error and a reader opened at the
// last position after the link heals reads on. A healthy idle link and a
// consumer that stops calling Next for a while are not mistaken for one.
func TestSilentLinkIsDetected(t *testing.T) {
	srv := sharedServer(t)
	execIn(t, srv, "", "CREATE DATABASE wd", "CREATE TABLE wd.t (id INT PRIMARY KEY)")

	zerolog.SetGlobalLevel(zerolog.Disabled)
	proxy := toxiproxy.NewProxy(toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		"watchdog", "127.0.0.1:0", srv.Addr)
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()

	// Heartbeats come every second. A timeout of 2 s fired on a healthy
	// idle link in CI, where the host paused the VM for over a second at
	// a time; 5 s leaves room for that and still ends the test in ~30 s.
	const timeout = 5 * time.Second
	cfg := baseConfig(t, srv)
	cfg.Addr = proxy.Listen
	cfg.Tables = []string{"wd.*"}
	cfg.readTimeout = timeout
	r := openReader(t, cfg, nil)

	// Nobody calls Next for longer than the timeout, and then the link is
	// idle (heartbeats only) for longer than it: neither is a dead link.
	execIn(t, srv, "", "INSERT INTO wd.t VALUES (1)")
	time.Sleep(2 * timeout)
	if got := ids(t, next(t, r)); got != "[1]" {
		t.Fatalf("first Txn has ids %s, want [1]", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
	txn, err := r.Next(ctx)
	cancel()
	if err != context.DeadlineExceeded {
		t.Fatalf("idle healthy link: Next = %v, %v; want the caller's deadline", txn, err)
	}

	// Black hole: data dropped both ways, connections left open.
	for _, stream := range []string{"upstream", "downstream"} {
		body := fmt.Sprintf(`{"name":"hole_%s","type":"timeout","stream":%q,"toxicity":1,"attributes":{"timeout":0}}`, stream, stream)
		if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	execIn(t, srv, "", "INSERT INTO wd.t VALUES (2)") // written, never delivered
	ctx, cancel = context.WithTimeout(context.Background(), 6*timeout)
	txn, err = r.Next(ctx)
	cancel()
	if err == nil || !retry.IsTransient(err) || !strings.Contains(err.Error(), "presumed dead") {
		t.Fatalf("silent link: Next = %v, %v; want a transient 'presumed dead' error", txn, err)
	}
	pos := r.Position()
	r.Close() // bounded too: its KILL connection has a deadline

	for _, stream := range []string{"upstream", "downstream"} {
		if err := proxy.Toxics.RemoveToxic(context.Background(), "hole_"+stream); err != nil {
			t.Fatal(err)
		}
	}
	cfg.ServerID = replicaID()
	r2 := openReader(t, cfg, pos)
	if got := ids(t, next(t, r2)); got != "[2]" {
		t.Fatalf("after the link healed: ids %s, want [2]", got)
	}
}

// ids lists the id column of a Txn's inserted rows.
func ids(t *testing.T, txn *event.Txn) string {
	t.Helper()
	var out []any
	for _, c := range txn.Changes {
		out = append(out, c.After[0])
	}
	return fmt.Sprint(out)
}
