package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/dag"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The engine's logic is tested here with an in-memory source and sink
// (stand-ins for an interface, not for a server); test/e2e runs the same
// engine against real MariaDB.

var testTable = &event.Table{Schema: "app", Name: "t", Columns: []event.Column{{Name: "id"}, {Name: "v"}}, PrimaryKey: []int{0}}

// log is the upstream: txn i (1-based) sets row i%keys to i; position "i".
type log struct {
	n, keys int
	// failAt: Next returns a transient error once when about to emit this index.
	failAt int
	mu     sync.Mutex
	opens  []string // resume positions the source was opened with
}

type memSource struct {
	l    *log
	next int
}

func (l *log) open(_ context.Context, resume event.Position) (source.Source, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opens = append(l.opens, resume.String())
	next := 1
	if len(resume) > 0 {
		i, err := strconv.Atoi(resume.String())
		if err != nil {
			return nil, err
		}
		next = i + 1
	}
	return &memSource{l: l, next: next}, nil
}

func (s *memSource) Next(ctx context.Context) (*event.Txn, error) {
	if s.next > s.l.n {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s.l.mu.Lock()
	if s.next == s.l.failAt {
		s.l.failAt = 0
		s.l.mu.Unlock()
		return nil, retry.Transient(errors.New("connection reset"))
	}
	s.l.mu.Unlock()
	i := s.next
	s.next++
	return &event.Txn{Kind: event.KindDML, Pos: event.Position(strconv.Itoa(i)), CommitTime: time.Now(),
		Changes: []event.Change{{Op: event.OpUpdate, Table: testTable, Before: []any{int64(i % s.l.keys), nil}, After: []any{int64(i % s.l.keys), int64(i)}}}}, nil
}

func (s *memSource) Position() event.Position { return event.Position(strconv.Itoa(s.next - 1)) }
func (s *memSource) Close() error             { return nil }

// memSink keeps the last value per key and checks per-key order.
type memSink struct {
	mu        sync.Mutex
	rows      map[int64]int64
	applied   int
	transient int    // fail this many Apply calls transiently
	fatalAt   int64  // fail fatally when a batch holds this value
	orderErr  string // first per-key order violation
}

func (s *memSink) Apply(_ context.Context, batch []*event.Txn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.transient > 0 {
		s.transient--
		return retry.Transient(errors.New("deadlock"))
	}
	for _, t := range batch {
		if v := t.Changes[0].After[1].(int64); v == s.fatalAt {
			return fmt.Errorf("table app.t missing at %s", t.Pos)
		}
	}
	for _, t := range batch {
		k, v := t.Changes[0].After[0].(int64), t.Changes[0].After[1].(int64)
		if v < s.rows[k] && s.orderErr == "" {
			s.orderErr = fmt.Sprintf("key %d: %d applied after %d", k, v, s.rows[k])
		}
		s.rows[k] = v
		s.applied++
	}
	return nil
}

func (s *memSink) Close() error { return nil }

func newTestChannel(t *testing.T, l *log, snk *memSink) (*Channel, *checkpoint.Store) {
	t.Helper()
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ch, err := New(Options{Name: "t", OpenSource: l.open,
		OpenSink: func(context.Context) (sink.Sink, error) { return snk, nil },
		Store:    store, Workers: 4, BatchTxns: 8, Window: dag.Options{MaxTxns: 64},
		CheckpointInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return ch, store
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *memSink) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.applied }

func TestChannelAppliesAllAndCheckpointsOnStop(t *testing.T) {
	l := &log{n: 2000, keys: 17}
	snk := &memSink{rows: map[int64]int64{}, transient: 3}
	ch, store := newTestChannel(t, l, snk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ch.Run(ctx) }()
	waitFor(t, "all applied", func() bool { return snk.count() >= 2000 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cp, ok, err := store.Load("t")
	if err != nil || !ok || cp.Pos.String() != "2000" {
		t.Fatalf("checkpoint = %q %v %v, want 2000", cp.Pos, ok, err)
	}
	if snk.orderErr != "" {
		t.Fatal(snk.orderErr)
	}
	for k, v := range snk.rows {
		if want := int64(2000 - (2000-k)%17); v != want {
			t.Fatalf("key %d = %d, want %d", k, v, want)
		}
	}
	if st := ch.Status(); st.State != StateStopped || st.AppliedTxns != 2000 {
		t.Fatalf("status %+v", st)
	}
}

func TestChannelReopensSourceAtCheckpoint(t *testing.T) {
	l := &log{n: 500, keys: 5, failAt: 300}
	snk := &memSink{rows: map[int64]int64{}}
	ch, _ := newTestChannel(t, l, snk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ch.Run(ctx) }()
	waitFor(t, "all applied", func() bool { return snk.count() >= 500 })
	cancel()
	<-done
	l.mu.Lock()
	defer l.mu.Unlock()
	// First open at no checkpoint, then reopen exactly after txn 299.
	if len(l.opens) != 2 || l.opens[0] != "" || l.opens[1] != "299" {
		t.Fatalf("source opened at %q, want [\"\" \"299\"]", l.opens)
	}
	if snk.count() != 500 {
		t.Fatalf("applied %d txns, want exactly 500 (no duplicates, no gaps)", snk.count())
	}
}

func TestChannelFatalErrorStopsAndResumes(t *testing.T) {
	l := &log{n: 400, keys: 400} // every txn its own key: all parallel
	snk := &memSink{rows: map[int64]int64{}, fatalAt: 250}
	ch, store := newTestChannel(t, l, snk)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- ch.Run(ctx) }()
	waitFor(t, "state error", func() bool { return ch.Status().State == StateError })
	st := ch.Status()
	if !strings.Contains(st.LastError, "app.t missing at 250") {
		t.Fatalf("last error %q", st.LastError)
	}
	cp, _, _ := store.Load("t")
	if n, _ := strconv.Atoi(cp.Pos.String()); n >= 250 {
		t.Fatalf("checkpoint %s at or past the failed txn 250", cp.Pos)
	}
	snk.mu.Lock()
	snk.fatalAt = -1
	snk.mu.Unlock()
	ch.Resume()
	waitFor(t, "all rows", func() bool {
		snk.mu.Lock()
		defer snk.mu.Unlock()
		return len(snk.rows) == 400 && snk.rows[250%400] == 250
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cp, _, _ := store.Load("t"); cp.Pos.String() != "400" {
		t.Fatalf("checkpoint after resume = %s, want 400", cp.Pos)
	}
}

// TestRetriedDeadlockIsResolvedNotLastError: a batch that fails with a
// transient error (a deadlock) and succeeds on a retry leaves the running
// channel without a last error; it is counted as resolved and kept as
// the last resolved error, and hamal_errors_resolved_total counts it.
func TestRetriedDeadlockIsResolvedNotLastError(t *testing.T) {
	l := &log{n: 300, keys: 7}
	snk := &memSink{rows: map[int64]int64{}, transient: 1}
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	ch, err := New(Options{Name: "t", OpenSource: l.open,
		OpenSink: func(context.Context) (sink.Sink, error) { return snk, nil },
		Store:    store, Workers: 2, BatchTxns: 8, Window: dag.Options{MaxTxns: 64},
		CheckpointInterval: 10 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ch.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "all applied", func() bool { return snk.count() >= 300 })
	st := ch.Status()
	if st.State != StateRunning || st.LastError != "" || st.ResolvedErrors != 1 || !strings.Contains(st.LastResolvedError, "deadlock") || st.LastResolvedErrorAt.IsZero() {
		t.Errorf("status: state %s, last error %q, resolved %d %q at %v", st.State, st.LastError, st.ResolvedErrors, st.LastResolvedError, st.LastResolvedErrorAt)
	}
	if v, ok := metricValue(t, reg, "hamal_errors_resolved_total", map[string]string{"what": "sink"}); !ok || v != 1 {
		t.Errorf("hamal_errors_resolved_total{what=sink} = %v (%v), want 1", v, ok)
	}
	if r := st.Redact(); !r.ErrorsRedacted || r.LastResolvedError != st.LastResolvedError {
		t.Errorf("redacted %+v", r)
	}
}
