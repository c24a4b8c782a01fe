package mysql

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/test/harness"
)

var (
	sharedOnce sync.Once
	shared     *harness.Server
	sharedErr  error
	nextID     atomic.Uint32
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		_ = shared.Remove()
	}
	os.Exit(code)
}

// sharedServer is one MariaDB for the tests that do not change server
// settings or purge binlogs. Each test uses its own schema.
func sharedServer(t *testing.T) *harness.Server {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = harness.StartMariaDB(harness.Options{ServerID: 1})
	})
	if sharedErr != nil {
		t.Fatalf("start MariaDB: %v", sharedErr)
	}
	return shared
}

// replicaID hands out distinct server_ids, so that a closed reader still
// listed by SHOW SLAVE HOSTS does not clash with the next one.
func replicaID() uint32 { return 1000 + nextID.Add(1) }

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func baseConfig(t *testing.T, srv *harness.Server) Config {
	return Config{Addr: srv.Addr, User: "root", ServerID: replicaID(), Logger: testLogger(t)}
}

func openReader(t *testing.T, cfg Config, resume event.Position) *Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Open(ctx, cfg, resume)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// next returns the next Txn that is not a heartbeat.
func next(t *testing.T, r *Reader) *event.Txn {
	t.Helper()
	for {
		txn := nextAny(t, r)
		if txn.Kind != event.KindHeartbeat {
			return txn
		}
	}
}

func nextAny(t *testing.T, r *Reader) *event.Txn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	txn, err := r.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return txn
}

// execIn runs statements on one connection with db as default schema.
func execIn(t *testing.T, srv *harness.Server, db string, stmts ...string) {
	t.Helper()
	c, err := client.Connect(srv.Addr, "root", "", db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range stmts {
		if _, err := c.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func mustDecode(t *testing.T, p event.Position) Position {
	t.Helper()
	pos, err := DecodePosition(p)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func describe(txn *event.Txn) string {
	s := fmt.Sprintf("%s pos=%s", txn.Kind, txn.Pos)
	for _, c := range txn.Changes {
		s += fmt.Sprintf("\n  %s %s before=%#v after=%#v", c.Op, c.Namespace, c.Before, c.After)
	}
	if txn.DDL != nil {
		s += "\n  ddl: " + txn.DDL.Statement
	}
	return s
}
