package pipeline

import (
	"context"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/dag"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

// scriptSource returns a fixed list of Txns, then blocks.
type scriptSource struct {
	txns []*event.Txn
	next int
}

func (s *scriptSource) Next(ctx context.Context) (*event.Txn, error) {
	if s.next >= len(s.txns) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	t := s.txns[s.next]
	s.next++
	return t, nil
}

func (s *scriptSource) Close() error { return nil }

// gateSink applies everything, but holds any batch containing the Txn at
// position hold until release is closed.
type gateSink struct {
	mu      sync.Mutex
	applied map[string]bool
	hold    string
	held    chan struct{} // closed when the held batch arrived
	release chan struct{}
}

func (s *gateSink) Apply(ctx context.Context, batch []*event.Txn) error {
	for _, t := range batch {
		if t.Pos.String() == s.hold {
			close(s.held)
			select {
			case <-s.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range batch {
		s.applied[t.Pos.String()] = true
	}
	return nil
}

func (s *gateSink) Close() error { return nil }

func (s *gateSink) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.applied) }

var opsTable = &event.Table{Schema: "app", Name: "t", Columns: []event.Column{{Name: "id"}, {Name: "v"}}, PrimaryKey: []int{0}}
var opsOther = &event.Table{Schema: "app", Name: "u", Columns: []event.Column{{Name: "id"}, {Name: "v"}}, PrimaryKey: []int{0}}

// metricValue returns the value of the series name with the given labels
// (besides channel), and whether it exists.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return math.NaN()
}

// TestMetricsCountWhatWasApplied runs a scripted stream of inserts,
// updates and deletes on two tables, with heartbeats between them, and
// checks every counter against what the script holds, and that the
// heartbeat gauge shows the newest heartbeat only once every Txn before it
// was applied.
func TestMetricsCountWhatWasApplied(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	var txns []*event.Txn
	want := map[[2]string]int{}
	beats := 0
	var lastBeat time.Time
	const n = 300
	for i := 1; i <= n; i++ {
		pos := event.Position(strconv.Itoa(i))
		if i%25 == 0 {
			lastBeat = base.Add(time.Duration(i) * time.Millisecond)
			txns = append(txns, &event.Txn{Kind: event.KindHeartbeat, Pos: pos, CommitTime: lastBeat, Heartbeat: lastBeat})
			beats++
			continue
		}
		tbl := opsTable
		if i%3 == 0 {
			tbl = opsOther
		}
		id := int64(i)
		var changes []event.Change
		switch i % 4 {
		case 0:
			changes = []event.Change{{Op: event.OpInsert, Namespace: tbl.Namespace(), Table: tbl, After: []any{id, id}},
				{Op: event.OpInsert, Namespace: tbl.Namespace(), Table: tbl, After: []any{id + 1000, id}}}
		case 1, 2:
			changes = []event.Change{{Op: event.OpUpdate, Namespace: tbl.Namespace(), Table: tbl, Before: []any{id, nil}, After: []any{id, id}}}
		case 3:
			changes = []event.Change{{Op: event.OpDelete, Namespace: tbl.Namespace(), Table: tbl, Before: []any{id, id}}}
		}
		for _, c := range changes {
			want[[2]string{c.Op.String(), c.Namespace}]++
		}
		txns = append(txns, &event.Txn{Kind: event.KindDML, Pos: pos, CommitTime: base, Changes: changes})
	}
	// The last heartbeat comes right after the held Txn, so it cannot
	// count as applied while that Txn is held.
	held := strconv.Itoa(n - 1)
	if txns[n-1].Heartbeat.IsZero() || txns[n-2].Kind != event.KindDML {
		t.Fatalf("script: txn %d must be the last heartbeat and %s a DML", n, held)
	}

	snk := &gateSink{applied: map[string]bool{}, hold: held, held: make(chan struct{}), release: make(chan struct{})}
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	ch, err := New(Options{Name: "ops",
		OpenSource: func(context.Context, event.Position) (source.Source, error) { return &scriptSource{txns: txns}, nil },
		OpenSink:   func(context.Context) (sink.Sink, error) { return snk, nil },
		Store:      store, Workers: 4, BatchTxns: 8, Window: dag.Options{MaxTxns: 64},
		CheckpointInterval: 10 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ch.Run(ctx) }()

	<-snk.held
	waitFor(t, "every heartbeat read", func() bool {
		v, _ := metricValue(t, reg, "hamal_source_heartbeats_total", nil)
		return v == float64(beats)
	})
	// The held Txn blocks the watermark: the newest applied heartbeat is
	// one before it, never the last.
	waitFor(t, "an earlier heartbeat applied", func() bool {
		_, ok := metricValue(t, reg, "hamal_source_heartbeat_timestamp_seconds", nil)
		return ok
	})
	if v, ok := metricValue(t, reg, "hamal_source_heartbeat_timestamp_seconds", nil); !ok || v == unixSeconds(lastBeat) {
		t.Fatalf("heartbeat timestamp = %v (present %v) while txn %s is held; want an earlier heartbeat", v, ok, held)
	}
	if busy, _ := metricValue(t, reg, "hamal_workers_busy", nil); busy < 1 {
		t.Errorf("hamal_workers_busy = %v while a batch is held", busy)
	}
	if st := ch.Status(); st.HeartbeatLagSeconds == nil || st.WorkersBusy < 1 || st.Workers != 4 {
		t.Errorf("status while held: heartbeat lag %v, workers %d busy %d", st.HeartbeatLagSeconds, st.Workers, st.WorkersBusy)
	}
	close(snk.release)
	waitFor(t, "all applied", func() bool { return snk.count() == n-beats })
	waitFor(t, "last heartbeat applied", func() bool {
		v, ok := metricValue(t, reg, "hamal_source_heartbeat_timestamp_seconds", nil)
		return ok && math.Abs(v-unixSeconds(lastBeat)) < 1e-6
	})
	if _, ok := metricValue(t, reg, "hamal_source_heartbeat_lag_seconds", nil); !ok {
		t.Error("hamal_source_heartbeat_lag_seconds missing after heartbeats were applied")
	}
	waitFor(t, "checkpoint at the end", func() bool {
		v, _ := metricValue(t, reg, "hamal_checkpoint_position_seq", nil)
		return v == n
	})
	// Those were periodic saves (no barrier, no shutdown yet): counted too.
	if v, _ := metricValue(t, reg, "hamal_checkpoint_saves_total", nil); v < 1 {
		t.Errorf("hamal_checkpoint_saves_total = %v after the periodic saves reached seq %d", v, n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	for key, count := range want {
		got, ok := metricValue(t, reg, "hamal_applied_rows_total", map[string]string{"op": key[0], "table": key[1]})
		if !ok || got != float64(count) {
			t.Errorf("hamal_applied_rows_total{op=%q,table=%q} = %v (present %v), want %d", key[0], key[1], got, ok, count)
		}
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"hamal_applied_txns_total", map[string]string{"kind": "dml"}, float64(n - beats)},
		{"hamal_applied_txns_total", map[string]string{"kind": "ddl"}, 0},
		{"hamal_source_heartbeats_total", nil, float64(beats)},
		{"hamal_source_position_seq", nil, n},
		{"hamal_source_position_commit_timestamp_seconds", nil, unixSeconds(lastBeat)},
		{"hamal_checkpoint_position_seq", nil, n},
		{"hamal_checkpoint_commit_timestamp_seconds", nil, unixSeconds(lastBeat)},
		{"hamal_dag_inflight_txns", nil, 0},
		{"hamal_dag_ready_txns", nil, 0},
		{"hamal_workers", nil, 4},
		{"hamal_workers_busy", nil, 0},
		{"hamal_channel_state", map[string]string{"state": "stopped"}, 1},
		{"hamal_channel_state", map[string]string{"state": "running"}, 0},
		{"hamal_errors_total", map[string]string{"class": "fatal"}, 0},
	}
	for _, c := range checks {
		got, ok := metricValue(t, reg, c.name, c.labels)
		if !ok || math.Abs(got-c.want) > 1e-6 {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// Every applied batch is observed once in each histogram.
	batches, _ := metricValue(t, reg, "hamal_batch_txns", nil)
	if rowsHist, _ := metricValue(t, reg, "hamal_batch_rows", nil); batches == 0 || rowsHist != batches {
		t.Errorf("hamal_batch_txns has %v observations, hamal_batch_rows %v", batches, rowsHist)
	}
}
