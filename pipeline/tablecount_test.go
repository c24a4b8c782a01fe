package pipeline

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
)

// countingSink counts per table what a sink with both per-table
// capabilities would: foreign writes and unique replacements.
type countingSink struct {
	foreign, replaced map[string]uint64
}

func (s *countingSink) Apply(context.Context, []*event.Txn) error { return nil }
func (s *countingSink) Close() error                              { return nil }
func (s *countingSink) ForeignWrites() map[string]uint64          { return s.foreign }
func (s *countingSink) UniqueReplacements() map[string]uint64     { return s.replaced }

// TestTableCountsSurviveSinkReopen: hamal_foreign_writes_total and
// hamal_unique_replacements_total sum, per table, what every sink of the
// channel counted, so a counter never goes back when the session reopens
// its sink.
func TestTableCountsSurviveSinkReopen(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := newObserver("c", 1, nil, newSupervisor(), checkpoint.Checkpoint{})
	if err := o.register(reg); err != nil {
		t.Fatal(err)
	}
	defer o.unregister()
	want := func(name, table string, n float64) {
		t.Helper()
		got, ok := metricValue(t, reg, name, map[string]string{"channel": "c", "table": table})
		if !ok || got != n {
			t.Errorf("%s{table=%q} = %v (present %v), want %v", name, table, got, ok, n)
		}
	}
	first := &countingSink{foreign: map[string]uint64{"app.a": 2}, replaced: map[string]uint64{"app.u": 3}}
	done := o.sinkOpened(first)
	want("hamal_unique_replacements_total", "app.u", 3)
	want("hamal_foreign_writes_total", "app.a", 2)
	done()
	second := &countingSink{replaced: map[string]uint64{"app.u": 1, "app.v": 4}}
	done = o.sinkOpened(second)
	want("hamal_unique_replacements_total", "app.u", 4)
	want("hamal_unique_replacements_total", "app.v", 4)
	want("hamal_foreign_writes_total", "app.a", 2)
	second.replaced["app.u"] = 5
	done()
	want("hamal_unique_replacements_total", "app.u", 8)
}
