package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/redisrepl"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/test/harness"
)

func setTxn(offset int64, key, value string) *event.Txn {
	pos := redisrepl.EncodePosition(redisrepl.Position{ReplID: strings.Repeat("a", 40), Epoch: "e1", Offset: offset})
	return &event.Txn{Kind: event.KindDML, Pos: pos, Changes: []event.Change{{Op: event.OpCommand, Namespace: "0",
		Keys: [][]byte{[]byte(key)}, Args: [][]byte{[]byte("SET"), []byte(key), []byte(value)}}}}
}

// TestLeaseExclusive: a second sink of the same channel is refused with
// ErrLeaseHeld naming the key and the holder; once the first closes, the
// second opens. Another channel is not affected.
func TestLeaseExclusive(t *testing.T) {
	ctx := context.Background()
	dst := harness.RedisServer(t, harness.RedisOptions{})
	// The holder's TTL leaves its renewals (every TTL/5) room on a loaded
	// machine; the newcomer's own TTL only sets how long it waits.
	a, err := Open(ctx, Config{Addr: dst.Addr, Channel: "ch", LeaseTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, Config{Addr: dst.Addr, Channel: "ch", LeaseTTL: time.Second})
	if !errors.Is(err, ErrLeaseHeld) || retry.IsTransient(err) || !strings.Contains(err.Error(), LeaseKey("ch")) || !strings.Contains(err.Error(), "stop that process") {
		t.Fatalf("second Open: %v, want a fatal ErrLeaseHeld naming %s and the fix", err, LeaseKey("ch"))
	}
	other, err := Open(ctx, Config{Addr: dst.Addr, Channel: "other", LeaseTTL: time.Second})
	if err != nil {
		t.Fatalf("another channel: %v", err)
	}
	other.Close()
	// The holder keeps renewing: the lease outlives its TTL.
	time.Sleep(4 * time.Second)
	if err := a.Apply(ctx, []*event.Txn{setTxn(100, "k1", "v1")}); err != nil {
		t.Fatalf("holder's Apply after more than its TTL: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := dst.Client().Exists(ctx, LeaseKey("ch"), ownerKey("ch")).Val(); n != 0 {
		t.Fatal("Close left the lease key behind")
	}
	b, err := Open(ctx, Config{Addr: dst.Addr, Channel: "ch", LeaseTTL: time.Second})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	b.Close()
}

// TestLeaseTakeoverWhenHolderGone: a lease whose holder's connection is
// gone (a killed process) is taken over at once, not after its TTL; one
// whose holder is connected is not.
func TestLeaseTakeoverWhenHolderGone(t *testing.T) {
	ctx := context.Background()
	dst := harness.RedisServer(t, harness.RedisOptions{})
	c := dst.Client()
	defer c.Close()
	// No client 999999 is connected; the key would live 10 minutes.
	if err := c.Set(ctx, LeaseKey("ch"), "999999 deadhost 4242 abcd", 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Config{Addr: dst.Addr, Channel: "ch", LeaseTTL: 5 * time.Second})
	if err != nil {
		t.Fatalf("Open over a dead holder's lease: %v", err)
	}
	v := c.Get(ctx, LeaseKey("ch")).Val()
	if strings.Contains(v, "deadhost") || c.PTTL(ctx, LeaseKey("ch")).Val() > 5*time.Second {
		t.Fatalf("lease after takeover: %q, ttl %s", v, c.PTTL(ctx, LeaseKey("ch")).Val())
	}
	s.Close()

	// A connected holder (this test's own connection) is waited for.
	conn := c.Conn()
	defer conn.Close()
	id := conn.ClientID(ctx).Val()
	if err := conn.Set(ctx, LeaseKey("ch"), strings.Join([]string{strconv.FormatInt(id, 10), "livehost", "77", "ef01"}, " "), 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, Config{Addr: dst.Addr, Channel: "ch", LeaseTTL: 500 * time.Millisecond})
	if !errors.Is(err, ErrLeaseHeld) || !strings.Contains(err.Error(), "livehost") {
		t.Fatalf("Open over a live holder: %v, want ErrLeaseHeld naming host livehost", err)
	}
}

// TestLeaseLostStopsApply: when another process takes the lease, the next
// Apply fails fatally and applies nothing.
func TestLeaseLostStopsApply(t *testing.T) {
	ctx := context.Background()
	dst := harness.RedisServer(t, harness.RedisOptions{})
	s, err := Open(ctx, Config{Addr: dst.Addr, Channel: "ch"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Apply(ctx, []*event.Txn{setTxn(100, "k1", "v1")}); err != nil {
		t.Fatal(err)
	}
	c := dst.Client()
	defer c.Close()
	if err := c.Set(ctx, LeaseKey("ch"), "1 otherhost 99 ffff", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, ownerKey("ch"), "1 otherhost 99 ffff", 0).Err(); err != nil {
		t.Fatal(err)
	}
	err = s.Apply(ctx, []*event.Txn{setTxn(200, "k2", "v2")})
	if !errors.Is(err, ErrLeaseHeld) || retry.IsTransient(err) || !strings.Contains(err.Error(), "otherhost") {
		t.Fatalf("Apply after the lease was taken: %v, want a fatal ErrLeaseHeld naming otherhost", err)
	}
	if v, err := c.Get(ctx, "k2").Result(); !errors.Is(err, goredis.Nil) {
		t.Fatalf("k2 = %q (%v): applied without the lease", v, err)
	}
	if v := c.Get(ctx, "k1").Val(); v != "v1" {
		t.Fatalf("k1 = %q, want v1", v)
	}
	// Closing does not delete the other holder's lease.
	s.Close()
	if v := c.Get(ctx, ownerKey("ch")).Val(); v != "1 otherhost 99 ffff" {
		t.Fatalf("lease after Close: %q", v)
	}
}

// TestLeaseSurvivesFlushall: a FLUSHALL replicated to the target wipes the
// lease keys too; the sink takes them back (one transient error, then the
// retried batch applies) instead of stopping.
func TestLeaseSurvivesFlushall(t *testing.T) {
	ctx := context.Background()
	dst := harness.RedisServer(t, harness.RedisOptions{})
	s, err := Open(ctx, Config{Addr: dst.Addr, Channel: "ch"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	flush := &event.Txn{Kind: event.KindDML, Pos: redisrepl.EncodePosition(redisrepl.Position{ReplID: strings.Repeat("a", 40), Epoch: "e1", Offset: 100}),
		Changes: []event.Change{{Op: event.OpCommand, Namespace: "0", Args: [][]byte{[]byte("FLUSHALL")}}}}
	if err := s.Apply(ctx, []*event.Txn{flush}); err != nil {
		t.Fatal(err)
	}
	c := dst.Client()
	defer c.Close()
	if n := c.Exists(ctx, LeaseKey("ch"), ownerKey("ch")).Val(); n != 0 {
		t.Fatalf("%d lease keys after FLUSHALL, want them gone (the test would prove nothing)", n)
	}
	batch := []*event.Txn{setTxn(200, "k", "v")}
	err = s.Apply(ctx, batch)
	if err != nil && (!retry.IsTransient(err) || errors.Is(err, ErrLeaseHeld)) {
		t.Fatalf("Apply after FLUSHALL: %v, want nil or a transient error", err)
	}
	if err != nil {
		if err := s.Apply(ctx, batch); err != nil {
			t.Fatalf("retried Apply: %v", err)
		}
	}
	if v := c.Get(ctx, "k").Val(); v != "v" {
		t.Fatalf("k = %q, want v", v)
	}
	if v := c.Get(ctx, ownerKey("ch")).Val(); v != s.lease.value {
		t.Fatalf("owner after taking it back: %q, want %q", v, s.lease.value)
	}
}
