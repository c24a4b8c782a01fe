package kafka

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/sink/sinktest"
	"github.com/hamal-replication/hamal/test/kafkatest"
)

// TestSinkConformance runs the shared sink suite against kfake with
// exactly-once publishing. The target's state is what a read_committed
// consumer sees: per message key, the changes in partition order (op and
// row images), so "replay converges" means every change exactly once, in
// order, whatever crash and replay point.
func TestSinkConformance(t *testing.T) {
	conformance(t, func(c *Config) { c.ExactlyOnce = true }, nil)
}

// TestSinkConformanceAtLeastOnce runs the suite in the default mode
// (at-least-once, with the lease): a second process fences the first,
// whose next unit fails and leaves nothing a read_committed consumer
// sees. Replay is not run: at-least-once publishes replayed changes
// again, by design, so the state after a replay is not the reference.
func TestSinkConformanceAtLeastOnce(t *testing.T) {
	conformance(t, nil, map[string]string{"replay": "at-least-once delivery publishes a replayed change again (by design: consumers deduplicate); TestSinkConformance runs replay with exactly_once"})
}

func conformance(t *testing.T, mod func(*Config), skip map[string]string) {
	brokers := kafkatest.Start(t, kafkatest.AutoCreate(2)...)
	current := ""
	topic := func() string { return "conf." + current + ".t" }
	read := func(t testing.TB) []kafkatest.Message {
		msgs, err := kafkatest.Read(t.Context(), brokers, topic())
		if err != nil && !strings.Contains(err.Error(), "UNKNOWN_TOPIC") {
			t.Fatalf("read %s: %v", topic(), err)
		}
		return msgs
	}
	sinktest.Run(t, sinktest.Target{
		Open: func(t testing.TB, channel string) (sink.Sink, error) {
			current = channel
			cfg := Config{Brokers: brokers, Channel: channel, Site: "sz", AutoCreateTopics: true,
				Topic: "conf.{channel}.{table}"}
			if mod != nil {
				mod(&cfg)
			}
			return Open(t.Context(), cfg)
		},
		State: func(t testing.TB) string {
			byKey := map[string][]string{}
			for _, m := range read(t) {
				var e struct {
					Op     string          `json:"op"`
					Before json.RawMessage `json:"before"`
					After  json.RawMessage `json:"after"`
				}
				if err := json.Unmarshal(m.Value, &e); err != nil {
					t.Fatal(err)
				}
				byKey[string(m.Key)] = append(byKey[string(m.Key)], e.Op+" "+string(e.Before)+" "+string(e.After))
			}
			var lines []string
			for k, v := range byKey {
				lines = append(lines, k+" → "+strings.Join(v, " | "))
			}
			sort.Strings(lines)
			return strings.Join(lines, "\n")
		},
		Reset: func(testing.TB) {}, // every run has a channel, so topics, of its own
		Txns:  sinktest.RowWorkload("conf", "t"),
		Markers: func(t testing.TB) string {
			var paths []string
			for _, m := range read(t) {
				for _, h := range m.Headers {
					if h.Key == PathHeader {
						paths = append(paths, fmt.Sprintf("%d:%s", m.Offset, h.Value))
					}
				}
			}
			return strings.Join(paths, ",")
		},
		Failing: &event.Txn{Seq: 99, Pos: event.Position("pos-99"), Kind: event.KindDML, Origin: "sz", Path: []string{"sz"},
			Changes: []event.Change{{Op: event.OpInsert, Namespace: "conf.t"}}}, // no table description: refused
		// The lease is the transactional id: a second process takes it
		// over and fences the first by producer epoch.
		TakesOver: true,
		Skip:      skip,
	})
}
