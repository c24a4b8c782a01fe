package reshard

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

var metricsTable = &event.Table{Schema: "app", Name: "t", Columns: []event.Column{{Name: "id"}, {Name: "v"}}, PrimaryKey: []int{0}}

// countSource emits DML Txns at positions after resume up to limit, then
// waits.
type countSource struct{ next, limit int }

func (s *countSource) Next(ctx context.Context) (*event.Txn, error) {
	if s.next > s.limit {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	i := s.next
	s.next++
	return &event.Txn{Kind: event.KindDML, Pos: event.Position(strconv.Itoa(i)), CommitTime: time.Now(),
		Changes: []event.Change{{Op: event.OpInsert, Namespace: "app.t", Table: metricsTable, After: []any{int64(i), "v"}}}}, nil
}

func (s *countSource) Close() error { return nil }

type countSink struct{ n atomic.Int64 }

func (s *countSink) Apply(_ context.Context, txns []*event.Txn) error {
	s.n.Add(int64(len(txns)))
	return nil
}
func (s *countSink) Close() error { return nil }

// TestRestartedChannelServesItsOwnMetrics starts a migration channel,
// stops it, and starts one of the same name, as a rollback attempt does:
// the migration's registry must then report the second channel's numbers.
func TestRestartedChannelServesItsOwnMetrics(t *testing.T) {
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	m := &Migration{plan: &Plan{}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), store: store, reg: reg}
	start := func(limit int) *countSink {
		snk := &countSink{}
		err := m.startChannel(context.Background(), "catchup-0", "sources[0] test", nil, true,
			func(_ context.Context, resume event.Position) (source.Source, error) {
				next := 1
				if resume != nil {
					n, err := strconv.Atoi(resume.String())
					if err != nil {
						return nil, err
					}
					next = n + 1
				}
				return &countSource{next: next, limit: limit}, nil
			},
			func(context.Context) (sink.Sink, error) { return snk, nil })
		if err != nil {
			t.Fatal(err)
		}
		return snk
	}
	applied := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "hamal_applied_txns_total" {
				continue
			}
			for _, s := range mf.GetMetric() {
				labels := map[string]string{}
				for _, lp := range s.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				if labels["channel"] == "catchup-0" && labels["kind"] == "dml" {
					return s.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	first := start(50)
	wait("50 applied", func() bool { return first.n.Load() == 50 && applied() == 50 })
	m.stopChannels()
	if err := migrationError(m); err != "" {
		t.Fatalf("first channel: %s", err)
	}

	second := start(80) // resumes after 50 and applies 30
	wait("30 applied", func() bool { return second.n.Load() == 30 })
	wait("the registry to show the second channel's 30", func() bool { return applied() == 30 })
	m.stopChannels()
	if err := migrationError(m); err != "" {
		t.Fatalf("second channel: %s", err)
	}
}

func migrationError(m *Migration) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}
