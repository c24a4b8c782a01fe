package kafkatest

import (
	"context"
	"errors"
	"io"
	"sort"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
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
type Message = kafkago.Message

// ReadAll returns every message of every partition of topic, ordered by
// partition then offset.
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

// Read is ReadAll returning an error.
func Read(ctx context.Context, brokers []string, topic string) ([]Message, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := kafkago.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return nil, err
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return nil, err
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].ID < parts[j].ID })
	var out []Message
	for _, p := range parts {
		pc, err := kafkago.DialLeader(ctx, "tcp", brokers[0], topic, p.ID)
		if err != nil {
			return nil, err
		}
		last, err := pc.ReadLastOffset()
		if err != nil {
			pc.Close()
			return nil, err
		}
		first, err := pc.ReadFirstOffset()
		if err != nil {
			pc.Close()
			return nil, err
		}
		if _, err := pc.Seek(first, kafkago.SeekAbsolute); err != nil {
			pc.Close()
			return nil, err
		}
		for off := first; off < last; {
			_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
			batch := pc.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					break
				}
				out = append(out, m)
				off = m.Offset + 1
			}
			if err := batch.Close(); err != nil && !errors.Is(err, io.EOF) {
				pc.Close()
				return nil, err
			}
		}
		pc.Close()
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
