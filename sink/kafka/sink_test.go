package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/envelope"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/test/kafkatest"
)

var (
	kvTable = &event.Table{Schema: "app", Name: "kv", Columns: []event.Column{
		{Name: "k", Type: gomysql.MYSQL_TYPE_LONG}, {Name: "v", Type: gomysql.MYSQL_TYPE_VARCHAR, Nullable: true}},
		PrimaryKey: []int{0}}
	usersTable = &event.Table{Schema: "app", Name: "users", Columns: []event.Column{
		{Name: "id", Type: gomysql.MYSQL_TYPE_LONG}, {Name: "email", Type: gomysql.MYSQL_TYPE_VARCHAR}},
		PrimaryKey: []int{0}, UniqueKeys: []event.UniqueKey{{Name: "uk_email", Columns: []int{1}}}}
)

func open(t *testing.T, brokers []string, mod func(*Config)) *Sink {
	t.Helper()
	cfg := Config{Brokers: brokers, Channel: "test", Site: "sz"}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func kvTxn(pos string, origin string, changes ...event.Change) *event.Txn {
	return &event.Txn{Pos: event.Position(pos), Origin: origin, Kind: event.KindDML, Changes: changes, CommitTime: time.UnixMilli(1700000000000)}
}

func put(k int32, v string) event.Change {
	return event.Change{Op: event.OpInsert, Namespace: "app.kv", Table: kvTable, After: []any{k, v}}
}

func upd(k int32, from, to string) event.Change {
	return event.Change{Op: event.OpUpdate, Namespace: "app.kv", Table: kvTable, Before: []any{k, from}, After: []any{k, to}}
}

// TestPublishesEnvelopesInKeyOrder writes 50 keys × 20 updates in batches
// of independent Txns (as the DAG hands them out) and requires every
// change in Kafka exactly once (after dropping the byte-identical copies
// that at-least-once delivery allows: CI saw 38 when the host stalled),
// each key in one partition, in order, with the origin header and the
// envelope decoding back to the change.
func TestPublishesEnvelopesInKeyOrder(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(4, "hamal.app.kv"))
	s := open(t, brokers, nil)
	ctx := context.Background()
	const keys, rounds = 50, 20
	for r := 0; r < rounds; r++ {
		var batch []*event.Txn
		for k := int32(0); k < keys; k++ {
			origin := ""
			if k%2 == 1 {
				origin = "sh"
			}
			c := put(k, "v0")
			if r > 0 {
				c = upd(k, fmt.Sprintf("v%d", r-1), fmt.Sprintf("v%d", r))
			}
			batch = append(batch, kvTxn(fmt.Sprintf("pos-%d-%d", r, k), origin, c))
		}
		if err := s.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	msgs := kafkatest.ReadDistinct(t, brokers, "hamal.app.kv")
	if len(msgs) != keys*rounds {
		t.Fatalf("got %d messages, want %d", len(msgs), keys*rounds)
	}
	partitionOf := map[int32]int{}
	next := map[int32]int{}
	partitionsUsed := map[int]bool{}
	dec := envelope.NewDecoder()
	for _, m := range msgs {
		c, src, err := dec.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		k := c.After[0].(int64)
		key := int32(k)
		if p, ok := partitionOf[key]; ok && p != m.Partition {
			t.Fatalf("key %d in partitions %d and %d", key, p, m.Partition)
		}
		partitionOf[key] = m.Partition
		partitionsUsed[m.Partition] = true
		if want := fmt.Sprintf("v%d", next[key]); c.After[1] != want {
			t.Fatalf("key %d: got %v at offset %d, want %s (out of order)", key, c.After[1], m.Offset, want)
		}
		next[key]++
		if want := fmt.Sprintf(`{"db":"app","table":"kv","key":{"k":%d}}`, key); string(m.Key) != want {
			t.Errorf("message key %s, want %s", m.Key, want)
		}
		wantOrigin := "sz"
		if key%2 == 1 {
			wantOrigin = "sh"
		}
		if len(m.Headers) != 1 || m.Headers[0].Key != OriginHeader || string(m.Headers[0].Value) != wantOrigin {
			t.Errorf("key %d: headers %v, want %s=%s", key, m.Headers, OriginHeader, wantOrigin)
		}
		if src.TxnOrigin() != wantOrigin || src.Channel != "test" {
			t.Errorf("key %d: source %+v", key, src)
		}
	}
	if len(partitionsUsed) < 2 {
		t.Errorf("50 keys all went to %d partition(s); the partitioner does not spread keys", len(partitionsUsed))
	}
}

// TestUniqueKeyTableStaysInOnePartition: a table with a secondary unique
// key is published to one partition so a moved unique value keeps its
// order for consumers.
func TestUniqueKeyTableStaysInOnePartition(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(4, "hamal.app.users"))
	s := open(t, brokers, nil)
	var batch []*event.Txn
	for i := int32(1); i <= 40; i++ {
		batch = append(batch, kvTxn(fmt.Sprint(i), "", event.Change{Op: event.OpInsert, Namespace: "app.users", Table: usersTable,
			After: []any{i, fmt.Sprintf("u%d@x", i)}}))
	}
	if err := s.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	msgs := kafkatest.ReadDistinct(t, brokers, "hamal.app.users")
	if len(msgs) != 40 {
		t.Fatalf("got %d messages, want 40", len(msgs))
	}
	for _, m := range msgs {
		if m.Partition != msgs[0].Partition {
			t.Fatalf("users rows in partitions %d and %d", msgs[0].Partition, m.Partition)
		}
	}
}

func TestKeyChangeIsDeleteThenCreate(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(1, "hamal.app.kv"))
	s := open(t, brokers, nil)
	c := event.Change{Op: event.OpUpdate, Namespace: "app.kv", Table: kvTable, Before: []any{int32(1), "a"}, After: []any{int32(2), "a"}}
	if err := s.Apply(context.Background(), []*event.Txn{kvTxn("p", "", c)}); err != nil {
		t.Fatal(err)
	}
	msgs := kafkatest.ReadDistinct(t, brokers, "hamal.app.kv")
	var ops []string
	for _, m := range msgs {
		var e struct {
			Op string `json:"op"`
		}
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, e.Op+" "+string(m.Key))
	}
	want := []string{`d {"db":"app","table":"kv","key":{"k":1}}`, `c {"db":"app","table":"kv","key":{"k":2}}`}
	if strings.Join(ops, "|") != strings.Join(want, "|") {
		t.Fatalf("got %v, want %v", ops, want)
	}
}

func TestDDLModes(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.AutoCreate(1)...)
	ddl := &event.Txn{Pos: event.Position("0-1-9"), Kind: event.KindDDL, DDL: &event.DDL{Schema: "app", Statement: "ALTER TABLE kv ADD c INT"}}

	err := open(t, brokers, nil).Apply(context.Background(), []*event.Txn{ddl})
	if err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), "ALTER TABLE kv ADD c INT") || !strings.Contains(err.Error(), "sink.kafka.ddl") {
		t.Fatalf("default mode: got %v, want a fatal error naming the statement and sink.kafka.ddl", err)
	}
	if err := open(t, brokers, func(c *Config) { c.DDL = DDLSkip }).Apply(context.Background(), []*event.Txn{ddl}); err != nil {
		t.Fatalf("skip: %v", err)
	}
	pub := open(t, brokers, func(c *Config) { c.DDL = DDLPublish; c.AutoCreateTopics = true })
	if err := pub.Apply(context.Background(), []*event.Txn{ddl}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	msgs := kafkatest.ReadDistinct(t, brokers, "hamal.test.ddl")
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Value), `"statement":"ALTER TABLE kv ADD c INT"`) {
		t.Fatalf("ddl topic holds %d messages: %v", len(msgs), msgs)
	}
	if _, _, err := envelope.NewDecoder().Decode(msgs[0].Value); err == nil || !strings.Contains(err.Error(), "DDL") {
		t.Fatalf("decoding a DDL envelope as a change: got %v, want an error about DDL", err)
	}
}

func TestMissingTopicIsFatal(t *testing.T) {
	brokers := kafkatest.Start(t)
	s := open(t, brokers, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.Apply(ctx, []*event.Txn{kvTxn("p", "", put(1, "a"))})
	if err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), "auto_create_topics") {
		t.Fatalf("got %v, want a fatal error naming sink.kafka.auto_create_topics", err)
	}
}

func TestUnreachableBrokerIsTransient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Open(ctx, Config{Brokers: []string{"127.0.0.1:1"}, Channel: "x"})
	if err == nil || !retry.IsTransient(err) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("got %v, want a transient error naming the broker", err)
	}
}

func TestRejectsChangesWithoutTable(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.Topics(1, "hamal.app.kv"))
	s := open(t, brokers, nil)
	txn := &event.Txn{Pos: event.Position("7"), Kind: event.KindDML, Changes: []event.Change{{Op: event.OpCommand, Namespace: "0", Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}, Keys: [][]byte{[]byte("k")}}}}
	err := s.Apply(context.Background(), []*event.Txn{txn})
	if err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), "no table description") {
		t.Fatalf("got %v, want a fatal error about the missing table description", err)
	}
}
