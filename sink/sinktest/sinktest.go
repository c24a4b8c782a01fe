// Package sinktest is the conformance suite every sink runs against a
// real target: the guarantees of package sink's target protocol, checked
// on the target's data.
//
//   - Replay: after a crash at any point (any prefix of the workload
//     applied), replaying any suffix that starts at or before it, in
//     batches, converges to the state of applying the workload once.
//   - One applier: a second process's sink does not open while the first
//     holds the lease; once the first lost its lease (LoseLease: ended on
//     the target without the process noticing, as a partition does) and
//     a successor opened and applied, the first's next unit fails with
//     ErrLeaseHeld and the target holds the successor's data.
//   - Marker in the unit: a unit whose data the target refuses leaves
//     neither data nor marker behind; a unit that commits changes both.
//
// A sink's test fills a Target with functions on its own server (test
// harness, FerretDB, kfake …) and calls Run:
//
//	sinktest.Run(t, sinktest.Target{
//		Open:  func(t testing.TB, channel string) (sink.Sink, error) { … },
//		State: func(t testing.TB) string { … }, // canonical dump of the data
//		Reset: func(t testing.TB) { … },
//		Txns:  sinktest.RowWorkload("conf", "t"),
//		LoseLease: func(t testing.TB, s sink.Sink) { … },
//		Markers:   func(t testing.TB) string { … },
//		Failing:   sinktest.RowTxn(…missing table…),
//	})
//
// A case the target cannot run is skipped with a message saying why
// (nil LoseLease on a target that does not TakesOver, nil Markers).
package sinktest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
)

// Target is one sink on one real target, as the suite drives it.
type Target struct {
	// Open opens the channel's sink as a new process would: its own
	// connections and its own lease.
	Open func(t testing.TB, channel string) (sink.Sink, error)
	// State returns the workload's data on the target as canonical text
	// (sorted), compared for equality.
	State func(t testing.TB) string
	// Reset empties the workload's data on the target. The sink's own
	// records (replay fence, marker, lease) are per channel: every run
	// of the suite uses a channel of its own, so they start empty.
	Reset func(t testing.TB)
	// Txns is the workload, in seq order. Every Txn carries a path, so a
	// sink with a site writes a marker.
	Txns []*event.Txn
	// LoseLease ends s's lease on the target without s noticing (its
	// keep-alive does not run before the suite's next Apply), as a
	// partition or an operator's KILL does. Nil skips the case.
	LoseLease func(t testing.TB, s sink.Sink)
	// TakesOver says that a second Open of the channel takes the lease
	// over and fences its holder (Kafka's transactional id, whose producer
	// epoch the brokers check at commit) rather than being refused: the
	// second process is the successor, and LoseLease is not needed.
	TakesOver bool
	// Markers returns the target's marker records of the channel as
	// canonical text; nil when the sink writes none on this target.
	Markers func(t testing.TB) string
	// Failing is a Txn of the workload's path whose data the target
	// refuses (e.g. a row of a missing table).
	Failing *event.Txn
	// Skip names why a case cannot run here, by case name ("replay",
	// "one applier", "marker"); the case is skipped with that message.
	Skip map[string]string
}

// Run runs the suite.
func Run(t *testing.T, tg Target) {
	if len(tg.Txns) == 0 {
		t.Fatal("sinktest: Target.Txns is empty")
	}
	t.Run("replay", func(t *testing.T) { tg.skip(t, "replay"); replay(t, tg) })
	t.Run("one applier", func(t *testing.T) { tg.skip(t, "one applier"); oneApplier(t, tg) })
	t.Run("marker", func(t *testing.T) { tg.skip(t, "marker"); marker(t, tg) })
}

func (tg Target) skip(t *testing.T, name string) {
	if why, ok := tg.Skip[name]; ok {
		t.Skip(why)
	}
}

func (tg Target) open(t testing.TB, channel string) sink.Sink {
	t.Helper()
	s, err := tg.Open(t, channel)
	if err != nil {
		t.Fatalf("open sink of channel %s: %v", channel, err)
	}
	return s
}

// applyIn applies txns in batches of at most size Txns.
func applyIn(t testing.TB, s sink.Sink, txns []*event.Txn, size int) {
	t.Helper()
	for i := 0; i < len(txns); i += size {
		batch := txns[i:min(i+size, len(txns))]
		if err := s.Apply(context.Background(), batch); err != nil {
			t.Fatalf("apply Txns %s…%s: %v", batch[0].Pos, batch[len(batch)-1].Pos, err)
		}
	}
}

// replay: for every crash point k (Txns[:k] applied, the process gone)
// and every checkpoint j <= k, a new process replaying Txns[j:] reaches
// the reference state.
func replay(t *testing.T, tg Target) {
	tg.Reset(t)
	s := tg.open(t, "sinktest-replay")
	applyIn(t, s, tg.Txns, 1)
	want := tg.State(t)
	s.Close()
	n := len(tg.Txns)
	for k := 0; k <= n; k++ {
		for j := 0; j <= k; j++ {
			tg.Reset(t)
			channel := fmt.Sprintf("sinktest-replay-%d-%d", k, j)
			first := tg.open(t, channel)
			applyIn(t, first, tg.Txns[:k], 1)
			first.Close() // the crash: nothing after Txns[:k] reached the target
			second := tg.open(t, channel)
			applyIn(t, second, tg.Txns[j:], 1+(k+j)%3) // batches of 1-3, chains included
			got := tg.State(t)
			second.Close()
			if got != want {
				t.Fatalf("crash after %d Txns, replay from Txn %d: target state\n%s\nwant\n%s", k, j, got, want)
			}
		}
	}
}

// oneApplier: the second process is refused while the first holds the
// lease; after the first lost it, the successor applies and the first's
// next unit fails, leaving the successor's data. On a target that
// TakesOver, the second process's Open is the takeover.
func oneApplier(t *testing.T, tg Target) {
	if tg.LoseLease == nil && !tg.TakesOver {
		t.Skip("sinktest: Target.LoseLease is nil, so a lease cannot be ended behind its holder's back on this target")
	}
	channel := "sinktest-lease"
	tg.Reset(t)
	first := tg.open(t, channel)
	defer first.Close()
	half := len(tg.Txns) / 2
	applyIn(t, first, tg.Txns[:half], 1)

	if !tg.TakesOver {
		if second, err := tg.Open(t, channel); err == nil {
			second.Close()
			t.Fatal("a second process opened the sink of a channel whose lease is held")
		} else if !errors.Is(err, sink.ErrLeaseHeld) {
			t.Fatalf("second Open: %v, want ErrLeaseHeld", err)
		}
		tg.LoseLease(t, first)
	}
	successor := tg.open(t, channel)
	defer successor.Close()
	applyIn(t, successor, tg.Txns, 2)
	want := tg.State(t)

	// The first process still believes it holds the lease and applies
	// its next batch: an older image of rows the successor wrote.
	err := first.Apply(context.Background(), tg.Txns[:half+1])
	if !errors.Is(err, sink.ErrLeaseHeld) {
		t.Fatalf("the first process's Apply after losing its lease: %v, want ErrLeaseHeld", err)
	}
	if got := tg.State(t); got != want {
		t.Fatalf("the first process's unit changed the target after the successor applied:\n%s\nwant\n%s", got, want)
	}
	// Lost for good.
	if err := first.Apply(context.Background(), tg.Txns[half:half+1]); !errors.Is(err, sink.ErrLeaseHeld) {
		t.Fatalf("a later Apply of the first process: %v, want ErrLeaseHeld", err)
	}
}

// marker: a unit whose data fails leaves neither data nor marker; a unit
// that commits writes its marker.
func marker(t *testing.T, tg Target) {
	if tg.Markers == nil {
		t.Skip("sinktest: Target.Markers is nil: this sink writes no marker on this target")
	}
	if tg.Failing == nil {
		t.Fatal("sinktest: Target.Failing is nil")
	}
	channel := "sinktest-marker"
	tg.Reset(t)
	s := tg.open(t, channel)
	defer s.Close()
	applyIn(t, s, tg.Txns[:1], 1)
	data, marks := tg.State(t), tg.Markers(t)
	if marks == "" {
		t.Fatal("a committed unit wrote no marker")
	}
	failing := []*event.Txn{tg.Txns[1], tg.Failing}
	if err := s.Apply(context.Background(), failing); err == nil {
		t.Fatal("the unit with a refused Txn committed")
	}
	if got := tg.State(t); got != data {
		t.Errorf("a failed unit left data:\n%s\nwant\n%s", got, data)
	}
	if got := tg.Markers(t); got != marks {
		t.Errorf("a failed unit left its marker: %s, want %s", got, marks)
	}
	applyIn(t, s, tg.Txns[1:2], 1)
	if got := tg.Markers(t); got == marks {
		t.Errorf("a committed unit did not change the marker (%s)", got)
	}
}

// RowWorkload is a workload of row changes to schema.table (id INT
// primary key, v VARCHAR): inserts, updates, a delete and re-insert, a
// primary-key change and multi-row Txns, for sinks that take a MySQL
// source's rows (sink/mysql, sink/mongo). Every Txn has origin "sz" and
// path [sz].
func RowWorkload(schema, table string) []*event.Txn {
	tbl := RowTable(schema, table)
	ins := func(id int32, v string) event.Change {
		return event.Change{Op: event.OpInsert, Namespace: tbl.Namespace(), Table: tbl, After: []any{id, v}}
	}
	upd := func(id int32, from, to string) event.Change {
		return event.Change{Op: event.OpUpdate, Namespace: tbl.Namespace(), Table: tbl, Before: []any{id, from}, After: []any{id, to}}
	}
	move := func(from, to int32, v string) event.Change {
		return event.Change{Op: event.OpUpdate, Namespace: tbl.Namespace(), Table: tbl, Before: []any{from, v}, After: []any{to, v}}
	}
	del := func(id int32, v string) event.Change {
		return event.Change{Op: event.OpDelete, Namespace: tbl.Namespace(), Table: tbl, Before: []any{id, v}}
	}
	changes := [][]event.Change{
		{ins(1, "a"), ins(2, "b")},
		{upd(1, "a", "a2")},
		{ins(3, "c")},
		{del(2, "b")},
		{move(3, 30, "c")},
		{ins(2, "b2"), upd(1, "a2", "a3")},
		{upd(30, "c", "c2"), del(1, "a3")},
		{ins(1, "a4")},
	}
	out := make([]*event.Txn, len(changes))
	for i, c := range changes {
		out[i] = RowTxn(uint64(i+1), c...)
	}
	return out
}

// RowTable is the table RowWorkload writes.
func RowTable(schema, table string) *event.Table {
	return &event.Table{Schema: schema, Name: table, PrimaryKey: []int{0},
		Columns: []event.Column{{Name: "id"}, {Name: "v", Nullable: true}}}
}

// RowTxn is a DML Txn of changes at seq, position "pos-<seq>", origin
// "sz", path [sz].
func RowTxn(seq uint64, changes ...event.Change) *event.Txn {
	return &event.Txn{Seq: seq, Pos: event.Position(fmt.Sprintf("pos-%d", seq)), Kind: event.KindDML,
		Origin: "sz", Path: []string{"sz"}, Changes: changes}
}
