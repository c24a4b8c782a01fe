package reshard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
	"github.com/hamal-replication/hamal/test/harness"
)

// failingSink applies the first ok transactions, then fails every batch
// with a fatal error, as a sink on the old shard does when its conflicts
// table refuses a row.
type failingSink struct {
	ok      atomic.Int64
	applied atomic.Int64
}

func (s *failingSink) Apply(_ context.Context, txns []*event.Txn) error {
	if s.applied.Load()+int64(len(txns)) > s.ok.Load() {
		return errors.New("Error 1366: Incorrect string value for column 'old_row' (hamal.conflicts is latin1)")
	}
	s.applied.Add(int64(len(txns)))
	return nil
}
func (s *failingSink) Close() error { return nil }

func gather(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// reverseMigration is a migration after its switch with two reverse
// channels of 20 transactions each: rev0 applies them, rev1's sink fails
// after 5 until broken.ok is raised.
func reverseMigration(t *testing.T) (m *Migration, reg *prometheus.Registry, healthy, broken *failingSink) {
	t.Helper()
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg = prometheus.NewRegistry()
	p := &Plan{Name: "rb", Sources: []Server{{}}, Targets: []Server{{}, {}}, Cutover: Cutover{Timeout: time.Minute}}
	m = &Migration{plan: p, log: slog.New(slog.NewTextHandler(io.Discard, nil)), store: store, reg: reg,
		st:          &State{Phase: PhaseCutover, Cutover: CutoverState{Step: StepSwitched, SwitchedAt: time.Now()}, Segments: map[string]*Segment{}},
		tableCopied: map[string]*atomic.Int64{}, startedAt: time.Now()}
	if err := reg.Register(&collector{m: m}); err != nil {
		t.Fatal(err)
	}
	open := func(limit int) func(context.Context, event.Position) (source.Source, error) {
		return func(_ context.Context, resume event.Position) (source.Source, error) {
			next := 1
			if resume != nil {
				n, err := strconv.Atoi(resume.String())
				if err != nil {
					return nil, err
				}
				next = n + 1
			}
			return &countSource{next: next, limit: limit}, nil
		}
	}
	healthy, broken = &failingSink{}, &failingSink{}
	healthy.ok.Store(1 << 40)
	broken.ok.Store(5)
	for i, snk := range []*failingSink{healthy, broken} {
		name := "migrate-rb-rev" + strconv.Itoa(i)
		if err := m.startChannel(context.Background(), name, "targets["+strconv.Itoa(i)+"] test", nil, false, open(20),
			func(context.Context) (sink.Sink, error) { return snk, nil }); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(m.stopChannels)
	return m, reg, healthy, broken
}

// TestReverseChannelErrorIsShown: after the switch, a reverse channel
// whose sink cannot apply makes reverse replication "failing", rollback
// not ready (naming the channel and its error), exports no lag for it and
// state error, while a healthy one exports its lag; resuming it restarts
// it from its checkpoint.
func TestReverseChannelErrorIsShown(t *testing.T) {
	m, reg, healthy, broken := reverseMigration(t)
	wait := func(what string, cond func(Status) bool) Status {
		t.Helper()
		var st Status
		if err := harness.WaitFor(context.Background(), 30*time.Second, func() (bool, error) {
			st = m.Status()
			return cond(st), nil
		}); err != nil {
			t.Fatalf("waiting for %s: %v; status %+v", what, err, st)
		}
		return st
	}
	st := wait("rev1 in state error", func(st Status) bool {
		return len(st.Channels) == 2 && st.Channels[1].State == pipeline.StateError && healthy.applied.Load() == 20
	})
	if st.Reverse.State != ReverseFailing || len(st.Reverse.Problems) != 1 ||
		!strings.Contains(st.Reverse.Problems[0], "migrate-rb-rev1 (targets[1] test → sources) is in state error: Error 1366") {
		t.Fatalf("reverse status: %+v", st.Reverse)
	}
	if st.Rollback.Ready || !strings.Contains(st.Rollback.Why, "not applying") || !strings.Contains(st.Rollback.Why, "Error 1366") {
		t.Fatalf("rollback: %+v", st.Rollback)
	}
	if st.Channels[1].Direction != DirectionReverse || st.Channels[1].To != "sources" {
		t.Fatalf("channel: %+v", st.Channels[1])
	}

	lags := map[string]bool{}
	for _, s := range gather(t, reg, "hamal_migrate_channel_lag_seconds") {
		lags[labelsOf(s)["channel"]] = true
	}
	if !lags["migrate-rb-rev0"] || lags["migrate-rb-rev1"] {
		t.Errorf("lag exported for %v; want rev0 only (rev1 cannot apply, so it has no lag)", lags)
	}
	states := map[string]string{}
	for _, s := range gather(t, reg, "hamal_migrate_channel_state") {
		if l := labelsOf(s); s.GetGauge().GetValue() == 1 {
			states[l["channel"]] = l["state"] + "/" + l["direction"]
		}
	}
	if states["migrate-rb-rev0"] != "running/reverse" || states["migrate-rb-rev1"] != "error/reverse" {
		t.Errorf("channel states %v", states)
	}
	if r := gather(t, reg, "hamal_migrate_rollback_ready"); len(r) != 1 || r[0].GetGauge().GetValue() != 0 {
		t.Errorf("hamal_migrate_rollback_ready %v, want 0", r)
	}
	if r := gather(t, reg, "hamal_migrate_reverse_channels_running"); len(r) != 1 || r[0].GetGauge().GetValue() != 1 {
		t.Errorf("hamal_migrate_reverse_channels_running %v, want 1", r)
	}

	// The cause fixed, resume restarts rev1 from its checkpoint: it
	// applies the rest and rollback is ready again.
	broken.ok.Store(1 << 40)
	if n := m.ResumeChannels(); n != 1 {
		t.Fatalf("ResumeChannels restarted %d channels, want 1", n)
	}
	st = wait("rev1 applied everything", func(st Status) bool { return broken.applied.Load() == 20 && st.Rollback.Ready })
	if st.Reverse.State != ReverseRunning || st.Reverse.Channels != 2 {
		t.Fatalf("after resume: %+v", st.Reverse)
	}
	if r := gather(t, reg, "hamal_migrate_rollback_ready"); len(r) != 1 || r[0].GetGauge().GetValue() != 1 {
		t.Errorf("hamal_migrate_rollback_ready %v after resume, want 1", r)
	}
}

// TestRollbackReadyByPhase: the rollback line for each phase and step.
func TestRollbackReadyByPhase(t *testing.T) {
	split := &Plan{Sources: []Server{{}}, Targets: []Server{{}, {}}}
	merge := &Plan{Sources: []Server{{}, {}}, Targets: []Server{{}}, Tables: []Table{{Name: "a.b"}}}
	running := func(n int) []ChannelStatus {
		var out []ChannelStatus
		for i := 0; i < n; i++ {
			out = append(out, ChannelStatus{Status: pipeline.Status{Name: "rev" + strconv.Itoa(i), State: pipeline.StateRunning, LagSeconds: 0.2}, Direction: DirectionReverse})
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		phase       Phase
		step        string
		plan        *Plan
		chans       []ChannelStatus
		reverse     string
		ready       bool
		whyContains string
	}{
		{"copy", PhaseCopy, "", split, nil, ReverseNotStarted, true, "never fenced"},
		{"fenced", PhaseCutover, StepFenced, split, nil, ReverseNotStarted, true, "unfences the sources"},
		{"switched, running", PhaseCutover, StepSwitched, split, running(2), ReverseRunning, true, "2 channel(s), lag 0.2s"},
		{"switched, one missing", PhaseCutover, StepSwitched, split, running(1), ReverseFailing, false, "1 of 2 reverse channels running"},
		{"switched, merge without source_rule", PhaseCutover, StepSwitched, merge, nil, ReverseNotAvailable, false, "source_rule"},
		{"complete", PhaseComplete, StepSwitched, split, nil, ReverseStopped, false, "complete"},
		{"cancelled", PhaseCancelled, "", split, nil, ReverseStopped, false, "cancelled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := reverseStatus(tc.phase, tc.step, tc.plan, tc.chans)
			rb := rollbackReady(tc.phase, tc.step, rs)
			if rs.State != tc.reverse || rb.Ready != tc.ready || !strings.Contains(rb.Why, tc.whyContains) {
				t.Fatalf("reverse %+v, rollback %+v; want %s, ready %v, why containing %q", rs, rb, tc.reverse, tc.ready, tc.whyContains)
			}
		})
	}
}

// TestStatusReadsWithoutTheLock: while a migration holds its state dir,
// LoadState reads the status file, and a stale verify is marked.
func TestStatusReadsWithoutTheLock(t *testing.T) {
	dir := t.TempDir()
	p := &Plan{Name: "lockfree", StateDir: dir, Sources: []Server{{}}, Targets: []Server{{}}}
	m, err := Open(p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.st.Phase = PhaseCatchup
	m.st.Verify = &VerifyReport{StartedAt: time.Now().Add(-time.Hour), FinishedAt: time.Now().Add(-time.Hour)}
	err = m.save()
	m.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p, nil, nil); err == nil || !strings.Contains(err.Error(), "another `hamal migrate start` of this plan is running") {
		t.Fatalf("second Open: %v", err)
	}
	for i := 0; i < 3; i++ { // as a watch loop does
		st, err := LoadState(dir, p.Name)
		if err != nil {
			t.Fatalf("LoadState while the migration runs: %v", err)
		}
		if st.Phase != PhaseCatchup || st.Verify == nil {
			t.Fatalf("LoadState: %+v", st)
		}
	}
	if s := m.Status(); !strings.Contains(s.VerifyStale, "earlier run") {
		t.Errorf("verify from before this process started: stale %q", s.VerifyStale)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// The status file beside Pebble's does not disturb it.
	m, err = Open(p, nil, nil)
	if err != nil {
		t.Fatalf("reopen with the status file present: %v", err)
	}
	defer m.Close()
	if m.st.Phase != PhaseCatchup {
		t.Fatalf("reopened phase %s", m.st.Phase)
	}
}
