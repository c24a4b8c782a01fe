package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/test/kafkatest"
)

// TestLeaseFencesTheFirstProcess: at-least-once (the default) and
// exactly-once alike, a second process opening the channel fences the
// first by producer epoch. The
// first's batch that was in flight (produced, not committed) when the
// successor opened fails at commit with sink.ErrLeaseHeld, fatal, and so
// does every later Apply; a read_committed consumer sees the first's
// batches before the takeover and the successor's, never the first's
// batch after it.
func TestLeaseFencesTheFirstProcess(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"at-least-once": nil,
		"exactly-once":  func(c *Config) { c.ExactlyOnce = true },
	} {
		t.Run(name, func(t *testing.T) { leaseFences(t, mod) })
	}
}

func leaseFences(t *testing.T, mod func(*Config)) {
	brokers := kafkatest.Start(t, kafkatest.Topics(2, "hamal.app.kv"))
	ctx := context.Background()
	a := open(t, brokers, mod)
	if a.lease == nil {
		t.Fatal("the default sink has no lease")
	}
	session(t, a, stream(1, 5), 5)

	// v6 is in flight in the first process's transaction.
	inflight := stream(6, 6)
	u, err := a.Begin(ctx, inflight)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Write(ctx); err != nil {
		t.Fatal(err)
	}

	b := open(t, brokers, mod)
	err = u.Commit(ctx)
	u.Abort()
	if !errors.Is(err, sink.ErrLeaseHeld) {
		t.Fatalf("the first process's in-flight commit after the takeover: %v, want sink.ErrLeaseHeld", err)
	}
	session(t, b, stream(7, 9), 2)

	err = a.Apply(ctx, stream(10, 10))
	if !errors.Is(err, sink.ErrLeaseHeld) || retry.IsTransient(err) {
		t.Fatalf("the first process's next Apply: %v, want fatal sink.ErrLeaseHeld", err)
	}
	if err := a.Apply(ctx, stream(11, 11)); !errors.Is(err, sink.ErrLeaseHeld) {
		t.Fatalf("a later Apply of the first process: %v, want sink.ErrLeaseHeld (lost for good)", err)
	}

	seen := values(t, brokers)
	for i := 1; i <= 9; i++ {
		want := 1
		if i == 6 {
			want = 0
		}
		if n := seen[fmt.Sprintf("v%d", i)]; n != want {
			t.Errorf("v%d seen %d times by a read_committed consumer, want %d", i, n, want)
		}
	}
	if len(seen) != 8 {
		t.Errorf("read_committed consumer saw %v, want v1..v5 and v7..v9", seen)
	}
}

// TestNoLeasePublishesWithoutFence: with NoLease (sink.kafka.lease:
// false) the producer has no transactional id: two processes of one
// channel both publish, as before the lease existed.
func TestNoLeasePublishesWithoutFence(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(2, "hamal.app.kv"))
	noLease := func(c *Config) { c.NoLease = true }
	a := open(t, brokers, noLease)
	if a.lease != nil {
		t.Fatal("a NoLease sink has a lease")
	}
	session(t, a, stream(1, 3), 3)
	b := open(t, brokers, noLease)
	session(t, b, stream(4, 6), 3)
	if err := a.Apply(context.Background(), stream(7, 7)); err != nil {
		t.Fatalf("the first process without a lease: %v, want its batch published", err)
	}
	seen := values(t, brokers)
	for i := 1; i <= 7; i++ {
		if n := seen[fmt.Sprintf("v%d", i)]; n != 1 {
			t.Errorf("v%d seen %d times, want once", i, n)
		}
	}
}

// TestNoLeaseWithExactlyOnceIsRefused: exactly-once needs the
// transactional id, so NoLease with ExactlyOnce fails at Open, naming
// both keys.
func TestNoLeaseWithExactlyOnceIsRefused(t *testing.T) {
	_, err := Open(context.Background(), Config{Brokers: []string{"127.0.0.1:1"}, Channel: "x", NoLease: true, ExactlyOnce: true})
	if err == nil || !strings.Contains(err.Error(), "sink.kafka.lease") || !strings.Contains(err.Error(), "exactly_once") {
		t.Fatalf("Open: %v, want an error naming sink.kafka.lease and exactly_once", err)
	}
}
