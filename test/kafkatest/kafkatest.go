package kafkatest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Opt configures the cluster.
type Opt = kfake.Opt

// Topics seeds topics with the given partition count.
func Topics(partitions int, topics ...string) Opt {
	return kfake.SeedTopics(int32(partitions), topics...)
}

// AutoCreate lets producers create topics, with partitions partitions each.
func AutoCreate(partitions int) []Opt {
	return []Opt{kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(partitions)}
}

// Start runs a one-broker cluster until the test ends and returns its
// listen addresses.
func Start(t testing.TB, opts ...Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Message is one record read back, with its partition and offset.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte // nil for a tombstone
	Headers   []Header
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// ReadAll returns every committed message of every partition of topic
// (isolation level read_committed: what an aborted transaction wrote is
// left out), ordered by partition then offset.
func ReadAll(t testing.TB, brokers []string, topic string) []Message {
	t.Helper()
	msgs, err := Read(context.Background(), brokers, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return msgs
}

// ReadDistinct is ReadAll without resent copies (see Distinct); it logs
// how many it dropped. Use it where a test counts changes, since delivery
// is at-least-once.
func ReadDistinct(t testing.TB, brokers []string, topic string) []Message {
	t.Helper()
	msgs, copies := Distinct(ReadAll(t, brokers, topic))
	if copies > 0 {
		t.Logf("%s: dropped %d resent copies (at-least-once delivery)", topic, copies)
	}
	return msgs
}

// Read is ReadAll returning an error, with extra client options (TLS,
// SASL).
func Read(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) ([]Message, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	// The last stable offset of each partition: everything before it is
	// committed or aborted.
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, admin)
	if err != nil {
		return nil, err
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.IsolationLevel = 1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, mt := range mresp.Topics {
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			return nil, fmt.Errorf("topic %s: %w", topic, err)
		}
		for _, p := range mt.Partitions {
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition, lp.Timestamp = p.Partition, -1
			lt.Partitions = append(lt.Partitions, lp)
		}
	}
	lo.Topics = append(lo.Topics, lt)
	lresp, err := lo.RequestWith(ctx, admin)
	if err != nil {
		return nil, err
	}
	ends := map[int32]int64{}
	for _, t := range lresp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("topic %s partition %d: %w", topic, p.Partition, err)
			}
			if p.Offset > 0 {
				ends[p.Partition] = p.Offset
			}
		}
	}
	if len(ends) == 0 {
		return nil, nil
	}
	starts := map[int32]kgo.Offset{}
	for p := range ends {
		starts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords()}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	byPart := map[int32][]Message{}
	for len(ends) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read %s: %w (%d partitions not read to their end)", topic, ctx.Err(), len(ends))
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := ends[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset >= end-1 {
				delete(ends, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			m := Message{Topic: r.Topic, Partition: int(r.Partition), Offset: r.Offset, Key: r.Key, Value: r.Value}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, Header{Key: h.Key, Value: h.Value})
			}
			byPart[r.Partition] = append(byPart[r.Partition], m)
		})
	}
	parts := make([]int32, 0, len(byPart))
	for p := range byPart {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var out []Message
	for _, p := range parts {
		out = append(out, byPart[p]...)
	}
	return out, nil
}

// Distinct drops resent copies from msgs, keeping each message's first
// occurrence, and says how many it dropped. Hamal's Kafka sink delivers
// at least once: kafka-go resends a batch whose acknowledgement timed out,
// byte for byte, so a copy has the same partition, key and value as the
// original (every envelope names its source position and index, so two
// distinct changes never do).
func Distinct(msgs []Message) (out []Message, copies int) {
	type id struct {
		partition  int
		key, value string
	}
	seen := make(map[id]bool, len(msgs))
	for _, m := range msgs {
		i := id{m.Partition, string(m.Key), string(m.Value)}
		if seen[i] {
			copies++
			continue
		}
		seen[i] = true
		out = append(out, m)
	}
	return out, copies
}
