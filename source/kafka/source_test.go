package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	sinkkafka "github.com/hamal-replication/hamal/sink/kafka"
	"github.com/hamal-replication/hamal/test/kafkatest"
)

var kvTable = &event.Table{Schema: "app", Name: "kv", Columns: []event.Column{
	{Name: "k", Type: gomysql.MYSQL_TYPE_LONG}, {Name: "v", Type: gomysql.MYSQL_TYPE_LONG}},
	PrimaryKey: []int{0}}

var kv2Table = &event.Table{Schema: "app", Name: "kv2", Columns: kvTable.Columns, PrimaryKey: []int{0}}

// publish writes rounds × keys updates (value = round) to app.kv and
// app.kv2 through the Kafka sink, rows of odd keys with origin "sh".
func publish(t *testing.T, brokers []string, keys, fromRound, rounds int) int {
	t.Helper()
	return publishWith(t, brokers, false, keys, fromRound, rounds)
}

// publishWith publishes as publish does; noLease uses the plain
// idempotent producer, which writes no transaction markers, so that a
// partition's offsets count its messages.
func publishWith(t *testing.T, brokers []string, noLease bool, keys, fromRound, rounds int) int {
	t.Helper()
	s, err := sinkkafka.Open(context.Background(), sinkkafka.Config{Brokers: brokers, Channel: "up", Site: "sz", AutoCreateTopics: true, NoLease: noLease})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for r := fromRound; r < fromRound+rounds; r++ {
		var batch []*event.Txn
		for k := 0; k < keys; k++ {
			tbl := kvTable
			if k%3 == 0 {
				tbl = kv2Table
			}
			origin := ""
			if k%2 == 1 {
				origin = "sh"
			}
			c := event.Change{Op: event.OpInsert, Namespace: tbl.Namespace(), Table: tbl, After: []any{int32(k), int64(r)}}
			batch = append(batch, &event.Txn{Pos: event.Position(fmt.Sprintf("0-1-%d", r*keys+k)), Origin: origin, Kind: event.KindDML,
				Changes: []event.Change{c}, CommitTime: time.UnixMilli(1700000000000)})
			n++
		}
		if err := s.Apply(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func openSource(t *testing.T, brokers []string, resume event.Position, mod func(*Config)) *Source {
	t.Helper()
	cfg := Config{Brokers: brokers, Topics: []string{"hamal.app.*"}}
	if mod != nil {
		mod(&cfg)
	}
	src, err := Open(context.Background(), cfg, resume)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

type rowKey struct {
	ns string
	k  int64
}

// readN reads n Txns and checks per-key order against last (updated).
// The Kafka sink that publish uses delivers at least once: kafka-go
// resends a batch whose acknowledgement timed out (CI saw it on a stalled
// machine). publish's batches hold one change per key and the next batch
// waits for the previous, so a resent copy repeats its key's latest
// value; readN skips such copies and does not count them in n.
func readN(t *testing.T, src *Source, n int, last map[rowKey]int64) []*event.Txn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var txns []*event.Txn
	copies := 0
	for len(txns) < n {
		txn, err := src.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d Txns: %v", len(txns), n, err)
		}
		if txn.Kind != event.KindDML || len(txn.Changes) != 1 {
			t.Fatalf("Txn %+v: want one DML change", txn)
		}
		c := txn.Changes[0]
		k, v := c.After[0].(int64), c.After[1].(int64)
		key := rowKey{c.Namespace, k}
		if prev, ok := last[key]; ok && v == prev {
			copies++
			continue
		} else if ok && v != prev+1 {
			t.Fatalf("%s key %d: value %d after %d (per-key order or a gap)", c.Namespace, k, v, prev)
		}
		last[key] = v
		wantOrigin := "sz"
		if k%2 == 1 {
			wantOrigin = "sh"
		}
		if txn.Origin != wantOrigin {
			t.Fatalf("key %d: origin %q, want %q", k, txn.Origin, wantOrigin)
		}
		if txn.ConflictKeys() == nil {
			t.Fatal("a keyed change decoded without conflict keys")
		}
		txns = append(txns, txn)
	}
	if copies > 0 {
		t.Logf("skipped %d resent copies (at-least-once publishing)", copies)
	}
	return txns
}

func TestReadsEverythingInKeyOrderAndResumes(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(3, "hamal.app.kv", "hamal.app.kv2"), kafkatest.Topics(1, "other"))
	const keys = 30
	total := publish(t, brokers, keys, 0, 10)

	src := openSource(t, brokers, nil, nil)
	last := map[rowKey]int64{}
	first := readN(t, src, total/2, last)
	resume := first[len(first)-1].Pos
	src.Close()

	// Everything up to resume was "applied"; a new source must deliver
	// exactly the rest: no gap, and here (nothing read past resume was
	// applied) no duplicate either.
	offsets, err := parsePosition(resume)
	if err != nil {
		t.Fatal(err)
	}
	if len(offsets) != 6 {
		t.Fatalf("position %s names %d partitions, want 6 (the glob must not match topic other)", resume, len(offsets))
	}
	src2 := openSource(t, brokers, resume, nil)
	readN(t, src2, total-total/2, last)
	for k := 0; k < keys; k++ {
		ns := "app.kv"
		if k%3 == 0 {
			ns = "app.kv2"
		}
		if last[rowKey{ns, int64(k)}] != 9 {
			t.Fatalf("%s key %d ended at %d, want 9", ns, k, last[rowKey{ns, int64(k)}])
		}
	}
	// Nothing more, and new messages still arrive.
	publish(t, brokers, keys, 10, 1)
	readN(t, src2, keys, last)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for {
		txn, err := src2.Next(ctx)
		if err != nil {
			break
		}
		c := txn.Changes[0]
		if k, v := c.After[0].(int64), c.After[1].(int64); last[rowKey{c.Namespace, k}] != v {
			t.Fatalf("read an extra Txn %+v", c.After)
		}
	}
}

func TestStartLatestPinsTheEnd(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(2, "hamal.app.kv", "hamal.app.kv2"))
	publishWith(t, brokers, true, 6, 0, 3) // offsets count messages
	src := openSource(t, brokers, nil, func(c *Config) { c.Start = StartLatest })
	offsets, err := parsePosition(src.Position())
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, o := range offsets {
		sum += o
	}
	if sum != 18 {
		t.Fatalf("start position %s sums to %d, want all 18 published messages skipped", src.Position(), sum)
	}
	publish(t, brokers, 6, 3, 1)
	last := map[rowKey]int64{}
	for _, txn := range readN(t, src, 6, last) {
		if v := txn.Changes[0].After[1].(int64); v != 3 {
			t.Fatalf("read value %d, want only the new round 3", v)
		}
	}
}

func TestNewTopicIsDiscovered(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.AutoCreate(2)...)
	src := openSource(t, brokers, nil, func(c *Config) { c.Rescan = 50 * time.Millisecond })
	n := publish(t, brokers, 4, 0, 2)
	readN(t, src, n, map[rowKey]int64{})
}

func TestRefusesBadPositions(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(1, "hamal.app.kv", "hamal.app.kv2"))
	publish(t, brokers, 2, 0, 2) // 2 messages to app.kv (key 1), 2 to kv2
	cases := map[string]struct {
		pos  string
		want string
	}{
		"other kind":  {"0-1-42", "another source kind"},
		"garbage":     {"kafka hamal.app.kv", "topic/partition=offset"},
		"beyond end":  {"kafka hamal.app.kv/0=99", "beyond the end"},
		"negative":    {"kafka hamal.app.kv/0=-1", "topic/partition=offset"},
		"bad partion": {"kafka hamal.app.kv/x=1", "topic/partition=offset"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Open(context.Background(), Config{Brokers: brokers, Topics: []string{"hamal.app.kv"}}, event.Position(tc.pos))
			if err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a fatal error containing %q", err, tc.want)
			}
		})
	}
}

func TestPurgedOffsetIsFatal(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(1, "hamal.app.kv", "hamal.app.kv2"))
	publishWith(t, brokers, true, 2, 0, 3) // key 1 → app.kv: 3 messages at offsets 0-2
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "hamal.app.kv"
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 2
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	if _, err := req.RequestWith(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Config{Brokers: brokers, Topics: []string{"hamal.app.kv"}}, event.Position("kafka hamal.app.kv/0=1"))
	if !errors.Is(err, ErrPurged) || retry.IsTransient(err) || !strings.Contains(err.Error(), "hamal.app.kv/0") {
		t.Fatalf("got %v, want a fatal ErrPurged naming the partition", err)
	}
	// At or above the earliest offset it resumes.
	src := openSource(t, brokers, event.Position("kafka hamal.app.kv/0=2"), func(c *Config) { c.Topics = []string{"hamal.app.kv"} })
	txns := readN(t, src, 1, map[rowKey]int64{})
	if v := txns[0].Changes[0].After[1].(int64); v != 2 {
		t.Fatalf("resumed at value %d, want 2", v)
	}
}

func TestBadEnvelopeIsFatal(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(1, "hamal.app.kv"))
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: "hamal.app.kv", RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond}
	if err := w.WriteMessages(context.Background(), kafkago.Message{Value: []byte("not an envelope")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	src := openSource(t, brokers, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := src.Next(ctx)
	if err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), "hamal.app.kv/0@0") {
		t.Fatalf("got %v, want a fatal error naming hamal.app.kv/0@0", err)
	}
}

func TestCloseUnblocksNext(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(1, "hamal.app.kv"))
	src := openSource(t, brokers, nil, nil)
	done := make(chan error, 1)
	go func() {
		_, err := src.Next(context.Background())
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	src.Close()
	if err := <-done; err == nil {
		t.Fatal("Next returned no error after Close")
	}
	src.Close() // idempotent
}

// TestAbortedBatchIsNeverApplied: a publisher fenced with a batch in
// flight (its transaction aborted by the successor's takeover) leaves
// messages in the log that a read_committed reader must skip, as it
// skips the transaction markers; the source reads the committed batches
// only, in order.
func TestAbortedBatchIsNeverApplied(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(1, "hamal.app.kv", "hamal.app.kv2"))
	ctx := context.Background()
	publish(t, brokers, 2, 0, 1) // round 0 committed
	zombie, err := sinkkafka.Open(ctx, sinkkafka.Config{Brokers: brokers, Channel: "up", Site: "sz"})
	if err != nil {
		t.Fatal(err)
	}
	defer zombie.Close()
	c := event.Change{Op: event.OpInsert, Namespace: kvTable.Namespace(), Table: kvTable, After: []any{int32(1), int64(99)}}
	u, err := zombie.Begin(ctx, []*event.Txn{{Pos: event.Position("0-1-99"), Kind: event.KindDML, Changes: []event.Change{c}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Write(ctx); err != nil { // produced, not committed
		t.Fatal(err)
	}
	publish(t, brokers, 2, 1, 1) // the successor takes over and publishes round 1
	if err := u.Commit(ctx); err == nil {
		t.Fatal("the fenced publisher's batch committed")
	}
	u.Abort()

	src := openSource(t, brokers, nil, nil)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var got []string
	for len(got) < 4 {
		txn, err := src.Next(rctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if txn.Kind != event.KindDML {
			continue
		}
		a := txn.Changes[0].After
		got = append(got, fmt.Sprintf("%s/%d=%d", txn.Changes[0].Namespace, a[0], a[1]))
	}
	sort.Strings(got)
	if want := "app.kv/1=0 app.kv/1=1 app.kv2/0=0 app.kv2/0=1"; strings.Join(got, " ") != want {
		t.Fatalf("read %v, want %s (never the aborted app.kv/1=99)", got, want)
	}
}
