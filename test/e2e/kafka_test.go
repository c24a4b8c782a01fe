package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/envelope"
	"github.com/hamal-replication/hamal/event"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/kafkatest"
	"github.com/hamal-replication/hamal/test/workload"
)

// newKafkaChannel writes a channel config whose source and sink blocks
// are given verbatim.
func newKafkaChannel(t *testing.T, name, sourceBlock, sinkBlock string) *channel {
	t.Helper()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &channel{dir: dir, path: filepath.Join(dir, "hamal.yaml"), adminAddr: fmt.Sprintf("127.0.0.1:%d", port), name: name}
	text := fmt.Sprintf(`name: %s
source:
%ssink:
%sapply:
  workers: 8
  batch_txns: 64
checkpoint:
  dir: %s
  interval: 200ms
admin:
  listen: %s
log:
  level: debug
`, name, sourceBlock, sinkBlock, filepath.Join(dir, "state"), c.adminAddr)
	if err := os.WriteFile(c.path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMySQLKafkaMySQLSurvivesKill9 replicates the mixed workload MariaDB →
// hamal → Kafka (in-process kfake, real protocol) → hamal → MariaDB,
// SIGKILLs each hamal process twice at random points, and requires: the
// target equals the source; every change the source's binlog holds is in
// Kafka at least once; and each row's messages are runs of its source
// changes in order (a replay after a kill may go back, never skip).
func TestMySQLKafkaMySQLSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src, dst := startPair(t)
	brokers := kafkatest.Start(t, kafkatest.AutoCreate(3)...)
	startGTID, err := src.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	// harness.Query's strings alias go-mysql's pooled result buffer: copy.
	startGTID = strings.Clone(startGTID)

	up := newKafkaChannel(t, "sz-to-kafka", fmt.Sprintf(`  kind: mysql
  addr: %s
  user: root
  password: ""
  server_id: 4242
  start: current
  tables: ["app.*"]
`, src.Addr), fmt.Sprintf(`  kind: kafka
  kafka:
    brokers: [%q]
    site: sz
    auto_create_topics: true
`, brokers[0]))
	down := newKafkaChannel(t, "kafka-to-sh", fmt.Sprintf(`  kind: kafka
  kafka:
    brokers: [%q]
    topics: ["hamal.app.*"]
    rescan: 300ms
`, brokers[0]), fmt.Sprintf(`  kind: mysql
  addr: %s
  user: root
  password: ""
`, dst.Addr))
	procs := map[*channel]*proc{up: up.startRunning(t), down: down.startRunning(t)}

	const workers, txnsPerWorker = 3, 1500
	var done atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	var finished atomic.Int32
	for w := 1; w <= workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			errc <- workload.Write(ctx, src.Addr, w, txnsPerWorker, 7, &done)
		}()
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	total := int64(workers * txnsPerWorker)
	for i, step := range []struct {
		frac float64
		ch   *channel
	}{{0.15, up}, {0.35, down}, {0.55, up}, {0.75, down}} {
		at := int64((step.frac + rng.Float64()*0.1) * float64(total))
		for done.Load() < at && finished.Load() < workers {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		procs[step.ch].kill(t)
		t.Logf("kill %d: SIGKILL %s at %d/%d transactions", i+1, step.ch.name, done.Load(), total)
		procs[step.ch] = step.ch.start(t)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	t.Logf("workload done: %d transactions", done.Load())
	waitTablesEqual(t, src, dst, workload.Tables, 3*time.Minute)
	if t.Failed() {
		return
	}

	// Every binlog change is in Kafka, and each key's messages are runs of
	// its source changes in order.
	want := binlogChanges(t, src, startGTID)
	got := map[string][]string{} // message key → projections, partition order
	messages := 0
	for table := range workload.Tables {
		for _, m := range kafkatest.ReadAll(t, brokers, "hamal."+table) {
			got[string(m.Key)] = append(got[string(m.Key)], projection(t, m.Value))
			messages++
		}
	}
	changes, replayed := 0, 0
	for key, seq := range want {
		changes += len(seq)
		msgs := got[key]
		next := 0 // index in seq of the change expected next
		for j, m := range msgs {
			if next < len(seq) && m == seq[next] {
				next++
				continue
			}
			// A replay restarts at an earlier change of this key.
			back := -1
			for i := next - 1; i >= 0; i-- {
				if seq[i] == m {
					back = i
					break
				}
			}
			if back < 0 {
				t.Fatalf("key %s: Kafka message %d is not a replay of an earlier change (order broken or foreign change):\n%s", key, j, m)
			}
			replayed++
			next = back + 1
		}
		if next != len(seq) {
			t.Fatalf("key %s: Kafka holds only the first %d of its %d source changes in order; change %d missing:\n%s", key, next, len(seq), next, seq[next])
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			t.Fatalf("Kafka holds key %s, which the source never changed", key)
		}
	}
	t.Logf("binlog: %d row changes over %d keys; Kafka: %d messages (%d replayed after kills)", changes, len(want), messages, replayed)
	if messages < changes {
		t.Fatalf("Kafka holds %d messages for %d source changes", messages, changes)
	}
}

// projection is what identifies a change in an envelope: op, row images.
func projection(t *testing.T, value []byte) string {
	var e struct {
		Op     string          `json:"op"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
	}
	if err := json.Unmarshal(value, &e); err != nil {
		t.Fatalf("envelope: %v", err)
	}
	return e.Op + " " + string(e.Before) + " " + string(e.After)
}

// binlogChanges reads the source's binlog after startGTID with Hamal's
// MySQL reader and encodes each change as the Kafka sink would, returning
// per message key the projections in binlog order.
func binlogChanges(t *testing.T, src *harness.Server, startGTID string) map[string][]string {
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
	endGTID = strings.Clone(endGTID) // see startGTID
	out := map[string][]string{}
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
			msgs, err := envelope.Encode(txn, envelope.Meta{}, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				out[string(m.Key)] = append(out[string(m.Key)], projection(t, m.Value))
			}
		}
		if strings.Contains(txn.Pos.String(), endGTID) {
			return out
		}
	}
}
