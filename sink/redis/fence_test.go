package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/redisrepl"
	"github.com/hamal-replication/hamal/test/harness"
)

// incrTxn is INCR key at offset, fenced by the key's slot.
func incrTxn(offset int64, key, origin string) *event.Txn {
	pos := redisrepl.EncodePosition(redisrepl.Position{ReplID: strings.Repeat("b", 40), Epoch: "e1", Offset: offset})
	return &event.Txn{Kind: event.KindDML, Pos: pos, Origin: origin, Changes: []event.Change{{Op: event.OpCommand, Namespace: "0",
		Keys: [][]byte{redisrepl.SlotTag([]byte(key))}, Args: [][]byte{[]byte("INCR"), []byte(key)}}}}
}

// calls returns how often the target ran command (INFO commandstats).
func calls(t *testing.T, r *harness.Redis, command string) int {
	t.Helper()
	v, err := r.Info("commandstats", "cmdstat_"+command)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(v, ",") {
		if n, ok := strings.CutPrefix(f, "calls="); ok {
			c, _ := strconv.Atoi(n)
			return c
		}
	}
	return 0
}

// TestFencesReadOncePerSlot: the sink reads a slot's fence from the target
// only the first time a batch touches it; later batches, replays included,
// are decided from the fences it knows, and a replay of applied Txns is
// still skipped (INCR counts each offset once). A second sink (a restart)
// reads the fences again and skips the same Txns.
func TestFencesReadOncePerSlot(t *testing.T) {
	ctx := context.Background()
	dst := harness.RedisServer(t, harness.RedisOptions{})
	keys := []string{"a", "b", "c", "{a}x"}
	var txns []*event.Txn
	for i := 0; i < 40; i++ {
		txns = append(txns, incrTxn(int64(100+i), keys[i%len(keys)], ""))
	}
	s, err := Open(ctx, Config{Addr: dst.Addr, Channel: "f", Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	hmget0 := calls(t, dst, "hmget")
	for i := 0; i < len(txns); i += 4 {
		if err := s.Apply(ctx, txns[i:i+4]); err != nil {
			t.Fatal(err)
		}
	}
	// Replay all of it, as after a source reconnect at an old checkpoint.
	if err := s.Apply(ctx, txns); err != nil {
		t.Fatal(err)
	}
	if n := calls(t, dst, "hmget") - hmget0; n != 1 {
		t.Errorf("%d fence reads (HMGET) for 11 batches over 3 slots, want 1", n)
	}
	c := dst.Client()
	defer c.Close()
	want := map[string]string{"a": "10", "b": "10", "c": "10", "{a}x": "10"}
	check := func(when string) {
		for k, v := range want {
			if got := c.Get(ctx, k).Val(); got != v {
				t.Errorf("%s: %s = %q, want %q", when, k, got, v)
			}
		}
	}
	check("after a replay on one sink")
	s.Close()
	s2, err := Open(ctx, Config{Addr: dst.Addr, Channel: "f", Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Apply(ctx, append(txns[20:], incrTxn(500, "a", ""))); err != nil {
		t.Fatal(err)
	}
	want["a"] = "11"
	check("after a replay on a new sink")
}

// TestOneWayChannelLeavesOnlyItsFence: without a site the sink writes no
// origin markers; once closed, the only key of Hamal's on the target is
// the channel's fence hash. With a site the marker is written (the loop
// guard of a two-way channel reads it).
func TestOneWayChannelLeavesOnlyItsFence(t *testing.T) {
	ctx := context.Background()
	dst := harness.RedisServer(t, harness.RedisOptions{})
	s, err := Open(ctx, Config{Addr: dst.Addr, Channel: "one", Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 64; i++ {
		if err := s.Apply(ctx, []*event.Txn{incrTxn(int64(10+i), fmt.Sprintf("k%d", i), "")}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	c := dst.Client()
	defer c.Close()
	got, err := c.Keys(ctx, redisrepl.MarkerPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != FenceKey("one") {
		t.Errorf("Hamal's keys on the target after a one-way channel: %q, want only %s", got, FenceKey("one"))
	}
	if n := c.HLen(ctx, FenceKey("one")).Val(); n != 64 {
		t.Errorf("fence hash has %d fields, want 64 (one per touched slot)", n)
	}
	s2, err := Open(ctx, Config{Addr: dst.Addr, Channel: "two", Site: "siteB", Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Apply(ctx, []*event.Txn{incrTxn(5, "m", "siteA")}); err != nil {
		t.Fatal(err)
	}
	if v := c.Get(ctx, redisrepl.OriginPrefix+"two:0").Val(); v != "siteA" {
		t.Errorf("origin marker = %q, want siteA", v)
	}
}
