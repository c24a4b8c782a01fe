package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/envelope"
	"github.com/hamal-replication/hamal/event"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

// TestKafkaFormatsKcatExactlyOnce runs, per format (hamal, debezium,
// canal, maxwell), the mixed workload (every column type) MariaDB →
// hamal with sink.kafka.exactly_once → Kafka (kfake as its own process),
// SIGKILLs the publisher mid-way and restarts it, and reads every topic
// with kcat (librdkafka) at isolation.level=read_committed. Each message
// key's messages must be exactly its source changes, in order, once each
// (no replay survives the kill), each value equal to the source's row in
// the format's representation, with the origin header.
func TestKafkaFormatsKcatExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed (Debian: apt-get install -y kcat): librdkafka interop not checked")
	}
	src := harness.MariaDB(t, harness.Options{ServerID: 1})
	src.MustExec(t, workload.Schema...)
	broker := harness.StartKafkaBroker(t, "../..", harness.KafkaBrokerOptions{AutoCreate: true, Partitions: 3})
	for fi, format := range []string{"hamal", "debezium", "canal", "maxwell"} {
		t.Run(format, func(t *testing.T) {
			startGTID, err := src.GTIDPos()
			if err != nil {
				t.Fatal(err)
			}
			startGTID = strings.Clone(startGTID)
			name := "eos-" + format
			ch := newKafkaChannel(t, name, fmt.Sprintf(`  kind: mysql
  addr: %s
  user: root
  password: ""
  server_id: %d
  start: current
  tables: ["app.*"]
`, src.Addr, 5000+len(format)), fmt.Sprintf(`  kind: kafka
  kafka:
    brokers: [%q]
    site: sz
    auto_create_topics: true
    topic: "%s.{db}.{table}"
    format: %s
    exactly_once: true
`, broker, format, format))
			p := ch.startRunning(t)

			const workers, txns = 2, 400
			var done atomic.Int64
			var finished atomic.Int32
			errc := make(chan error, workers)
			var wg sync.WaitGroup
			for w := 1; w <= workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer finished.Add(1)
					// Each subtest's writers own their own id spaces.
					errc <- workload.Write(context.Background(), src.Addr, fi*workers+w, txns, uint64(fi+1), &done)
				}()
			}
			if err := harness.WaitFor(context.Background(), 2*time.Minute, func() (bool, error) {
				return done.Load() >= workers*txns*2/5 || finished.Load() == workers, nil
			}); err != nil {
				t.Fatalf("writers reached %d of %d transactions: %v", done.Load(), workers*txns, err)
			}
			p.kill(t)
			t.Logf("SIGKILL the publisher at %d/%d transactions", done.Load(), workers*txns)
			p = ch.startRunning(t)
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Fatalf("workload: %v", err)
				}
			}
			enc, err := envelope.NewEncoder(envelope.FormatOptions{Name: format}, envelope.Meta{Channel: name, Site: "sz"})
			if err != nil {
				t.Fatal(err)
			}
			want, total := binlogMessages(t, src, startGTID, enc)
			var got map[string][]string
			var n int
			// On a timeout the comparison below names what is missing.
			_ = harness.WaitFor(context.Background(), 2*time.Minute, func() (bool, error) {
				got, n = kcatMessages(t, broker, format)
				return n >= total, nil
			})
			t.Logf("binlog: %d messages over %d keys; kcat read_committed: %d", total, len(want), n)
			for key, seq := range want {
				msgs := got[key]
				if len(msgs) != len(seq) {
					t.Errorf("key %s: %d messages, want %d (exactly once)", key, len(msgs), len(seq))
					continue
				}
				for i := range seq {
					if msgs[i] != seq[i] {
						t.Errorf("key %s message %d:\n got %s\nwant %s", key, i, msgs[i], seq[i])
						break
					}
				}
			}
			for key := range got {
				if _, ok := want[key]; !ok {
					t.Errorf("Kafka holds key %s, which the source never changed", key)
				}
			}
			if n != total {
				t.Errorf("kcat read %d messages, want %d", n, total)
			}
		})
	}
}

// volatile are the fields that name when a message was written or
// read (not the change), left out of comparisons.
var volatile = []string{"ts_ms", "ts", "es", "id", "xid", "position", "source", "transaction", "_hamal", "commit", "xoffset", "schema"}

// formatProjection is a value without its volatile fields, as canonical
// JSON; "TOMBSTONE" for a null value.
func formatProjection(t *testing.T, value []byte) string {
	if value == nil {
		return "TOMBSTONE"
	}
	d := json.NewDecoder(bytes.NewReader(value))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("value %s: %v", value, err)
	}
	for _, k := range volatile {
		delete(m, k)
	}
	b, err := json.Marshal(m) // sorted keys
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// binlogMessages reads the source's binlog after startGTID and encodes
// each change with enc, as the sink does: per message key the
// projections in binlog order, and the message count.
func binlogMessages(t *testing.T, src *harness.Server, startGTID string, enc envelope.Encoder) (map[string][]string, int) {
	t.Helper()
	ctx := context.Background()
	r, err := srcmysql.Open(ctx, srcmysql.Config{Addr: src.Addr, User: "root", ServerID: 4343, Start: startGTID, Tables: []string{"app.*"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	endGTID, err := src.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	endGTID = strings.Clone(endGTID)
	out, n := map[string][]string{}, 0
	for {
		nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		txn, err := r.Next(nctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("binlog reader stopped before the source's end %s", endGTID)
		}
		if err != nil {
			t.Fatal(err)
		}
		if txn.Kind == event.KindDML || txn.Kind == event.KindBarrier {
			msgs, err := enc.Encode(txn, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				k := m.Schema + "." + m.Table + " " + string(m.Key)
				out[k] = append(out[k], formatProjection(t, m.Value))
				n++
			}
		}
		if strings.Contains(txn.Pos.String(), endGTID) {
			return out, n
		}
	}
}

// kcatMessages reads every workload topic of format with kcat at
// read_committed: per key the projections in partition order, and the
// count. Every message must carry hamal-origin: sz.
func kcatMessages(t *testing.T, broker, format string) (map[string][]string, int) {
	t.Helper()
	out, n := map[string][]string{}, 0
	tables := make([]string, 0, len(workload.Tables))
	for table := range workload.Tables {
		tables = append(tables, table)
	}
	sort.Strings(tables)
	for _, table := range tables {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, "kcat", "-b", broker, "-C", "-t", format+"."+table, "-o", "beginning", "-e", "-J", "-Z", "-q",
			"-X", "isolation.level=read_committed")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		cancel()
		if err != nil {
			if strings.Contains(stderr.String(), "Unknown topic") {
				continue // not created yet
			}
			t.Fatalf("kcat %s: %v\n%s", table, err, stderr.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(string(stdout)), "\n") {
			if line == "" {
				continue
			}
			var m struct {
				Partition int      `json:"partition"`
				Offset    int64    `json:"offset"`
				Key       *string  `json:"key"`
				Payload   *string  `json:"payload"`
				Headers   []string `json:"headers"`
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("kcat line %q: %v", line, err)
			}
			if len(m.Headers) != 2 || m.Headers[0] != "hamal-origin" || m.Headers[1] != "sz" {
				t.Fatalf("%s offset %d: headers %v, want hamal-origin=sz", table, m.Offset, m.Headers)
			}
			key := ""
			if m.Key != nil {
				key = *m.Key
			}
			var value []byte
			if m.Payload != nil {
				value = []byte(*m.Payload)
			}
			k := table + " " + key
			out[k] = append(out[k], formatProjection(t, value))
			n++
		}
	}
	return out, n
}

// TestKafkaSourceFormatsFromKcat: Hamal as the apply side of another CDC
// pipeline. For Debezium (JSON converter with schemas), Canal and Maxwell,
// the workload's changes on app.orders and app.users are written to a
// topic by kcat (librdkafka's producer) in that format, as the tool
// would publish them; hamal (source.kafka.format) applies the topic into
// a MariaDB target, which must then equal the source's tables.
func TestKafkaSourceFormatsFromKcat(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed (Debian: apt-get install -y kcat): librdkafka interop not checked")
	}
	src := harness.MariaDB(t, harness.Options{ServerID: 1})
	src.MustExec(t, workload.Schema...)
	broker := harness.StartKafkaBroker(t, "../..", harness.KafkaBrokerOptions{AutoCreate: true, Partitions: 1})
	startGTID, err := src.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	startGTID = strings.Clone(startGTID)
	var done atomic.Int64
	for w := 1; w <= 2; w++ {
		if err := workload.Write(context.Background(), src.Addr, w, 300, uint64(w), &done); err != nil {
			t.Fatal(err)
		}
	}
	tables := map[string]string{"app.orders": workload.Tables["app.orders"], "app.users": workload.Tables["app.users"]}
	for _, o := range []envelope.FormatOptions{{Name: "debezium", Schemas: true}, {Name: "canal"}, {Name: "maxwell"}} {
		t.Run(o.Name, func(t *testing.T) {
			// A target of its own: Hamal's state on a target (conflict
			// records) belongs to the channel that wrote it.
			dst := harness.MariaDB(t, harness.Options{ServerID: 2})
			dst.MustExec(t, workload.Schema...)
			enc, err := envelope.NewEncoder(o, envelope.Meta{Channel: "upstream"})
			if err != nil {
				t.Fatal(err)
			}
			// What the other tool would have published, in binlog order.
			var input bytes.Buffer
			n := 0
			ctx := context.Background()
			r, err := srcmysql.Open(ctx, srcmysql.Config{Addr: src.Addr, User: "root", ServerID: 4344, Start: startGTID, Tables: []string{"app.orders", "app.users"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			endGTID, err := src.GTIDPos()
			if err != nil {
				t.Fatal(err)
			}
			endGTID = strings.Clone(endGTID)
			for {
				nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				txn, err := r.Next(nctx)
				cancel()
				if err != nil {
					t.Fatalf("binlog: %v", err)
				}
				if txn.Kind == event.KindDML {
					msgs, err := enc.Encode(txn, time.Now())
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range msgs {
						fmt.Fprintf(&input, "%s\t%s\n", m.Key, m.Value)
						n++
					}
				}
				if strings.Contains(txn.Pos.String(), endGTID) {
					break
				}
			}
			r.Close()
			topic := "in." + o.Name
			cmd := exec.Command("kcat", "-b", broker, "-P", "-t", topic, "-p", "0", "-K", "\t", "-Z")
			cmd.Stdin = &input
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P: %v\n%s", err, out)
			}
			t.Logf("kcat produced %d %s messages", n, o.Name)
			ch := newKafkaChannel(t, "from-"+o.Name, fmt.Sprintf(`  kind: kafka
  kafka:
    brokers: [%q]
    topics: [%q]
    format: %s
    rescan: 300ms
`, broker, topic, o.Name), fmt.Sprintf(`  kind: mysql
  addr: %s
  user: root
  password: ""
`, dst.Addr))
			p := ch.startRunning(t)
			waitTablesEqual(t, src, dst, tables, 2*time.Minute)
			if t.Failed() {
				logRowDiff(t, src, dst, "SELECT id, email, HEX(name), visits FROM app.users ORDER BY id")
			}
			p.kill(t)
		})
	}
}

// logRowDiff logs the rows of query that differ between src and dst.
func logRowDiff(t *testing.T, src, dst *harness.Server, query string) {
	a, err1 := src.Query(query)
	b, err2 := dst.Query(query)
	if err1 != nil || err2 != nil {
		t.Logf("diff: %v %v", err1, err2)
		return
	}
	set := func(rows [][]string) map[string]bool {
		m := map[string]bool{}
		for _, r := range rows {
			m[strings.Join(r, "|")] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	for r := range sa {
		if !sb[r] {
			t.Logf("source only: %s", r)
		}
	}
	for r := range sb {
		if !sa[r] {
			t.Logf("target only: %s", r)
		}
	}
}
