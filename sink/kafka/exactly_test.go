package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hamal-replication/hamal/envelope"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/test/kafkatest"
)

func eosOpen(t *testing.T, brokers []string) *Sink {
	t.Helper()
	return open(t, brokers, func(c *Config) { c.ExactlyOnce = true; c.Channel = "eos" })
}

// stream is the source's stream of Txns, one insert each: Txn i sets key
// i%7 to v<i>, at position p<i>.
func stream(from, to int) []*event.Txn {
	var out []*event.Txn
	for i := from; i <= to; i++ {
		out = append(out, kvTxn(fmt.Sprintf("p%d", i), "", put(int32(i%7), fmt.Sprintf("v%d", i))))
	}
	return out
}

// session applies txns numbered from seq 1 in batches of size.
func session(t *testing.T, s *Sink, txns []*event.Txn, size int) {
	t.Helper()
	for i := range txns {
		txns[i].Seq = uint64(i + 1)
	}
	for i := 0; i < len(txns); i += size {
		if err := s.Apply(context.Background(), txns[i:min(i+size, len(txns))]); err != nil {
			t.Fatalf("apply at %s: %v", txns[i].Pos, err)
		}
	}
}

// values returns the after-values of the topic's envelopes, in order per
// key, and counts each.
func values(t *testing.T, brokers []string) map[string]int {
	t.Helper()
	dec := envelope.NewDecoder()
	seen := map[string]int{}
	for _, m := range kafkatest.ReadAll(t, brokers, "hamal.app.kv") {
		c, _, err := dec.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		seen[c.After[1].(string)]++
	}
	return seen
}

// TestExactlyOnceAcrossRestarts: a first process publishes p1..p60 and
// saved a checkpoint at seq 20, then dies; the second resumes at p21 and
// reads p21..p90 again, saving at its seq 15 (p35); it dies too, and a
// third resumes at p36 and reads on to p100. A read_committed reader sees
// each change exactly once, and the fence dropped exactly the replays.
func TestExactlyOnceAcrossRestarts(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(3, "hamal.app.kv"))

	a := eosOpen(t, brokers)
	session(t, a, stream(1, 40), 7)
	a.Persisted(20)
	session2 := stream(41, 60)
	for i, txn := range session2 { // seqs go on
		txn.Seq = uint64(41 + i)
		if err := a.Apply(context.Background(), []*event.Txn{txn}); err != nil {
			t.Fatal(err)
		}
	}
	a.Close() // as after kill -9: nothing flushed, nothing said

	b := eosOpen(t, brokers)
	session(t, b, stream(21, 90), 9)
	if got := b.Replays(); got != 40 {
		t.Errorf("second process dropped %d replays, want 40 (p21..p60)", got)
	}
	b.Persisted(15) // its checkpoint: p35
	b.Close()

	c := eosOpen(t, brokers)
	session(t, c, stream(36, 100), 11)
	if got := c.Replays(); got != 55 {
		t.Errorf("third process dropped %d replays, want 55 (p36..p90)", got)
	}

	seen := values(t, brokers)
	for i := 1; i <= 100; i++ {
		if n := seen[fmt.Sprintf("v%d", i)]; n != 1 {
			t.Errorf("v%d seen %d times, want exactly once", i, n)
		}
	}
	if len(seen) != 100 {
		t.Errorf("%d distinct changes, want 100", len(seen))
	}
}

// TestExactlyOnceFencesTheFirstProcess: a second process opening the
// channel fences the first by producer epoch; the first's next batch fails
// with sink.ErrLeaseHeld (fatal) and none of it is visible.
func TestExactlyOnceFencesTheFirstProcess(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(1, "hamal.app.kv"))
	a := eosOpen(t, brokers)
	session(t, a, stream(1, 5), 5)
	b := eosOpen(t, brokers)
	err := a.Apply(context.Background(), []*event.Txn{{Seq: 6, Pos: event.Position("p6"), Kind: event.KindDML, Changes: []event.Change{put(6, "v6")}}})
	if !errors.Is(err, sink.ErrLeaseHeld) || retry.IsTransient(err) {
		t.Fatalf("fenced process: got %v, want fatal sink.ErrLeaseHeld", err)
	}
	txns := stream(6, 8)
	for i, txn := range txns {
		txn.Seq = uint64(i + 1)
	}
	if err := b.Apply(context.Background(), txns); err != nil {
		t.Fatal(err)
	}
	seen := values(t, brokers)
	for i := 1; i <= 8; i++ {
		if seen[fmt.Sprintf("v%d", i)] != 1 {
			t.Errorf("v%d seen %d times, want once", i, seen[fmt.Sprintf("v%d", i)])
		}
	}
	if len(seen) != 8 {
		t.Errorf("seen %v", seen)
	}
}

// TestExactlyOnceAbortsWhatADeadProcessLeftOpen: a transaction left open
// by a process killed between produce and commit is aborted when the next
// process opens the channel, and read_committed readers never see it.
func TestExactlyOnceAbortsWhatADeadProcessLeftOpen(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(1, "hamal.app.kv"))
	dead, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(TransactionalID("eos")))
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	if err := dead.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := dead.ProduceSync(context.Background(), &kgo.Record{Topic: "hamal.app.kv", Value: []byte(`{"half":"done"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	s := eosOpen(t, brokers)
	session(t, s, stream(1, 3), 3)
	msgs := kafkatest.ReadAll(t, brokers, "hamal.app.kv")
	if len(msgs) != 3 {
		t.Fatalf("read_committed sees %d messages, want the 3 committed ones (the dead process's open transaction aborted)", len(msgs))
	}
}
