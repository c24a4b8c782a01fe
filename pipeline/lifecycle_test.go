package pipeline

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/dag"
	"github.com/hamal-replication/hamal/sink"
)

// runUntil runs ch until cond holds, then stops it and waits for Run.
func runUntil(t *testing.T, ch *Channel, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ch.Run(ctx) }()
	waitFor(t, what, cond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// seriesOf counts the series labelled channel=name in g.
func seriesOf(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "channel" && lp.GetValue() == name {
					n++
				}
			}
		}
	}
	return n
}

// TestChannelRecreatedServesItsOwnMetrics stops a channel, closes it and
// creates one of the same name on the same registry, as a migration does
// after a rollback attempt: the registry then holds the new channel's
// numbers, none of the old one's.
func TestChannelRecreatedServesItsOwnMetrics(t *testing.T) {
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	l := &log{n: 300, keys: 7}
	open := func(snk *memSink) (*Channel, error) {
		return New(Options{Name: "again", OpenSource: l.open,
			OpenSink: func(context.Context) (sink.Sink, error) { return snk, nil },
			Store:    store, Workers: 2, BatchTxns: 8, Window: dag.Options{MaxTxns: 64},
			CheckpointInterval: 10 * time.Millisecond, Registerer: reg})
	}

	first := &memSink{rows: map[int64]int64{}}
	ch1, err := open(first)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, ch1, "300 applied", func() bool { return first.count() >= 300 })
	if v, _ := metricValue(t, reg, "hamal_applied_txns_total", map[string]string{"channel": "again", "kind": "dml"}); v != 300 {
		t.Fatalf("first channel: hamal_applied_txns_total = %v, want 300", v)
	}

	// Not closed: a second channel of that name is refused, loudly.
	if _, err := open(&memSink{rows: map[int64]int64{}}); err == nil || !strings.Contains(err.Error(), "register metrics for channel again") {
		t.Fatalf("second channel while the first is registered: err = %v, want a registration error", err)
	}
	if err := ch1.Close(); err != nil {
		t.Fatal(err)
	}
	if n := seriesOf(t, reg, "again"); n != 0 {
		t.Fatalf("%d series of the closed channel still registered", n)
	}

	// The next channel resumes at the checkpoint (300) and applies 120.
	l.mu.Lock()
	l.n = 420
	l.mu.Unlock()
	second := &memSink{rows: map[int64]int64{}}
	ch2, err := open(second)
	if err != nil {
		t.Fatal(err)
	}
	defer ch2.Close()
	runUntil(t, ch2, "120 more applied", func() bool { return second.count() >= 120 })
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"hamal_applied_txns_total", map[string]string{"kind": "dml"}, 120},
		{"hamal_source_position_seq", nil, 120},
		{"hamal_checkpoint_position_seq", nil, 120},
		{"hamal_channel_state", map[string]string{"state": "stopped"}, 1},
	}
	for _, c := range checks {
		labels := map[string]string{"channel": "again"}
		for k, v := range c.labels {
			labels[k] = v
		}
		if got, ok := metricValue(t, reg, c.name, labels); !ok || got != c.want {
			t.Errorf("second channel: %s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if st := ch2.Status(); st.AppliedTxns != 120 || st.CheckpointPosition != "420" {
		t.Errorf("second channel status: %d applied, checkpoint %q; want 120 at 420", st.AppliedTxns, st.CheckpointPosition)
	}
}

// TestRestartWithNothingNewShowsCheckpoint restarts a channel whose source
// has nothing new: before Run and while it runs, Status and the position
// gauges show the checkpoint it resumed from, not blanks and zeros.
func TestRestartWithNothingNewShowsCheckpoint(t *testing.T) {
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	l := &log{n: 200, keys: 9}
	open := func(reg prometheus.Registerer, snk *memSink) *Channel {
		ch, err := New(Options{Name: "idle", OpenSource: l.open,
			OpenSink: func(context.Context) (sink.Sink, error) { return snk, nil },
			Store:    store, Workers: 2, BatchTxns: 8, Window: dag.Options{MaxTxns: 64},
			CheckpointInterval: 10 * time.Millisecond, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	first := &memSink{rows: map[int64]int64{}}
	ch1 := open(nil, first)
	runUntil(t, ch1, "200 applied", func() bool { return first.count() >= 200 })
	ch1.Close()
	cp, ok, err := store.Load("idle")
	if err != nil || !ok || cp.Pos.String() != "200" || cp.CommitTime.IsZero() {
		t.Fatalf("checkpoint after the first run: %+v %v %v", cp, ok, err)
	}

	reg := prometheus.NewRegistry()
	ch2 := open(reg, &memSink{rows: map[int64]int64{}})
	defer ch2.Close()
	check := func(when string) {
		t.Helper()
		st := ch2.Status()
		if st.SourcePosition != "200" || st.CheckpointPosition != "200" {
			t.Errorf("%s: source position %q, checkpoint %q; want both at the checkpoint 200", when, st.SourcePosition, st.CheckpointPosition)
		}
		for name, want := range map[string]float64{
			"hamal_source_position_seq":                      0,
			"hamal_checkpoint_position_seq":                  0,
			"hamal_source_position_commit_timestamp_seconds": unixSeconds(cp.CommitTime),
			"hamal_checkpoint_commit_timestamp_seconds":      unixSeconds(cp.CommitTime),
		} {
			if got, ok := metricValue(t, reg, name, nil); !ok || math.Abs(got-want) > 1e-6 {
				t.Errorf("%s: %s = %v (present %v), want %v", when, name, got, ok, want)
			}
		}
	}
	check("before Run")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ch2.Run(ctx) }()
	waitFor(t, "running with the source open", func() bool {
		st := ch2.Status()
		return st.State == StateRunning && st.SourceConnected
	})
	check("running, nothing new read")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if got := l.opens[len(l.opens)-1]; got != "200" {
		t.Fatalf("second run opened the source at %q, want the checkpoint 200", got)
	}
}
