package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/test/harness"
)

// next reads Txns until pred holds, skipping heartbeats unless wanted.
func next(t *testing.T, s *Source, keepHeartbeats bool) *event.Txn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		txn, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if txn.Kind == event.KindHeartbeat && !keepHeartbeats {
			continue
		}
		return txn
	}
}

func argv(c event.Change) string {
	parts := make([]string, len(c.Args))
	for i, a := range c.Args {
		parts[i] = string(a)
	}
	parts[0] = strings.ToUpper(parts[0])
	return strings.Join(parts, " ")
}

func TestFullSyncThenStream(t *testing.T) {
	r := harness.RedisServer(t, harness.RedisOptions{})
	ctx := context.Background()
	cl := r.Client()
	defer cl.Close()
	cl.Set(ctx, "s", "v", 0)
	cl.Set(ctx, "ttl", "x", time.Hour)
	cl.RPush(ctx, "l", "a", "b")
	cl.SAdd(ctx, "set", "m")
	cl.ZAdd(ctx, "z", goredisZ(1.5, "m"))
	cl.HSet(ctx, "h", "f", "v")
	cl.XAdd(ctx, xadd("st", "1-1", "f", "v"))
	cl.Set(ctx, "hamal:offset:x", "skip me", 0)

	s, err := Open(ctx, Config{Addr: r.Addr, Site: "a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.FullSync() {
		t.Fatal("expected a full sync")
	}
	got := map[string]string{}
	for {
		txn := next(t, s, true)
		p, err := DecodePosition(txn.Pos)
		if err != nil {
			t.Fatal(err)
		}
		if txn.Kind == event.KindHeartbeat {
			if p.Snapshot {
				t.Fatalf("end-of-RDB heartbeat still marked snapshot: %s", p)
			}
			break
		}
		if !p.Snapshot {
			t.Fatalf("RDB Txn without snapshot position: %s", p)
		}
		var cmds []string
		for _, c := range txn.Changes {
			cmds = append(cmds, argv(c))
			if len(c.Keys) != 1 {
				t.Fatalf("RDB change %s has keys %q", argv(c), c.Keys)
			}
		}
		got[string(txn.Changes[0].Args[1])] = strings.Join(cmds, "; ")
	}
	want := map[string]string{
		"s":   "SET s v",
		"l":   "DEL l; RPUSH l a b",
		"set": "DEL set; SADD set m",
		"z":   "DEL z; ZADD z 1.5 m",
		"h":   "DEL h; HSET h f v",
		"st":  "DEL st; XADD st 1-1 f v; XSETID st 1-1 ENTRIESADDED 1 MAXDELETEDID 0-0",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("key %s: got %q, want %q", k, got[k], w)
		}
	}
	if !strings.HasPrefix(got["ttl"], "SET ttl x; PEXPIREAT ttl ") {
		t.Errorf("ttl key: got %q", got["ttl"])
	}
	if _, ok := got["hamal:offset:x"]; ok {
		t.Error("hamal:* key emitted as data")
	}

	// Stream: a plain command, a MULTI/EXEC, another db, a barrier, and a
	// marked transaction as a sink writes it.
	cl.Incr(ctx, "n")
	pipe := cl.TxPipeline()
	pipe.LPush(ctx, "l", "c")
	pipe.SAdd(ctx, "set", "n")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	c3 := r.ClientDB(3)
	defer c3.Close()
	c3.Set(ctx, "k3", "v", 0)
	cl.Do(ctx, "FLUSHDB")
	pipe = cl.TxPipeline()
	pipe.Set(ctx, OriginPrefix+"w1", "b", 0)
	pipe.Set(ctx, "fromb", "1", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	txn := next(t, s, false)
	if argv(txn.Changes[0]) != "INCR n" || txn.Changes[0].Namespace != "0" || txn.Origin != "a" || txn.IsBarrier() {
		t.Fatalf("INCR: got %+v", txn)
	}
	txn = next(t, s, false)
	if len(txn.Changes) != 2 || argv(txn.Changes[0]) != "LPUSH l c" || argv(txn.Changes[1]) != "SADD set n" {
		t.Fatalf("MULTI: got %d changes", len(txn.Changes))
	}
	txn = next(t, s, false)
	if txn.Changes[0].Namespace != "3" || argv(txn.Changes[0]) != "SET k3 v" {
		t.Fatalf("db 3: got %+v", txn.Changes)
	}
	txn = next(t, s, false)
	if !txn.IsBarrier() || argv(txn.Changes[0]) != "FLUSHDB" {
		t.Fatalf("FLUSHDB: got %+v", txn)
	}
	txn = next(t, s, false)
	if txn.Origin != "b" || len(txn.Changes) != 1 || argv(txn.Changes[0]) != "SET fromb 1" {
		t.Fatalf("marked: origin %q changes %v", txn.Origin, txn.Changes)
	}
	last, _ := DecodePosition(txn.Pos)
	off, _ := r.Info("replication", "master_repl_offset")
	if off != itoa(last.Offset) {
		t.Fatalf("position offset %d, master_repl_offset %s", last.Offset, off)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	r := harness.RedisServer(t, harness.RedisOptions{Password: "secret"})
	_, err := Open(ctx, Config{Addr: r.Addr, Password: "wrong"}, nil)
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), "source.password") {
		t.Errorf("wrong password: %v", err)
	}
	port, _ := harness.FreePort()
	_, err = Open(ctx, Config{Addr: "127.0.0.1:" + itoa(int64(port)), DialTimeout: time.Second}, nil)
	if err == nil || !retry.IsTransient(err) || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable: %v", err)
	}
	other := EncodePosition(Position{ReplID: strings.Repeat("a", 40), Offset: 10, Epoch: "x:0"})
	_, err = Open(ctx, Config{Addr: r.Addr, Password: "secret"}, other)
	if !errors.Is(err, ErrUnknownReplID) || !strings.Contains(err.Error(), "delete the channel's checkpoint") {
		t.Errorf("checkpoint from another master: %v", err)
	}
}

// TestDiskRDBAndContinue: a master that sends its RDB from disk ($<len>
// form); then a second Open at the last position continues (+CONTINUE)
// without a second full sync, in the database the stream had selected.
func TestDiskRDBAndContinue(t *testing.T) {
	r := harness.RedisServer(t, harness.RedisOptions{Args: []string{"--repl-diskless-sync", "no"}})
	ctx := context.Background()
	cl := r.ClientDB(2)
	defer cl.Close()
	p := cl.Pipeline()
	for i := 0; i < 5000; i++ {
		p.Set(ctx, "k"+itoa(int64(i)), strings.Repeat("v", i%100), 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Config{Addr: r.Addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for {
		txn := next(t, s, true)
		if txn.Kind == event.KindHeartbeat {
			break
		}
		if txn.Changes[0].Namespace != "2" {
			t.Fatalf("namespace %q, want 2", txn.Changes[0].Namespace)
		}
		keys++
	}
	if keys != 5000 {
		t.Fatalf("full sync emitted %d keys, want 5000", keys)
	}
	cl.Incr(ctx, "n")
	txn := next(t, s, false)
	s.Close()
	cl.Incr(ctx, "n2")
	s, err = Open(ctx, Config{Addr: r.Addr}, txn.Pos)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.FullSync() {
		t.Fatal("resume did a full sync; want +CONTINUE")
	}
	txn = next(t, s, false)
	if argv(txn.Changes[0]) != "INCR n2" || txn.Changes[0].Namespace != "2" {
		t.Fatalf("after continue: %s in db %s", argv(txn.Changes[0]), txn.Changes[0].Namespace)
	}
	if full, _ := r.Info("stats", "sync_full"); full != "1" {
		t.Fatalf("sync_full = %s, want 1", full)
	}
}
