package relay

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/source"
)

// benchTable is a sysbench-like table: id PK, k, c, pad.
var benchTable = &event.Table{Schema: "app", Name: "sbtest", Columns: []event.Column{
	{Name: "id", Type: 3}, {Name: "k", Type: 3}, {Name: "c", Type: 254}, {Name: "pad", Type: 254},
}, PrimaryKey: []int{0}}

// benchSource builds a new one-row Txn per Next, as a source decoding an
// event would.
type benchSource struct{ i, limit int }

func (s *benchSource) Next(ctx context.Context) (*event.Txn, error) {
	if s.i >= s.limit {
		<-ctx.Done()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.i++
	id := int32(s.i)
	return &event.Txn{Pos: event.Position("0-1-" + strconv.Itoa(s.i)), Kind: event.KindDML, CommitTime: time.Unix(int64(1700000000+s.i/1000), 0),
		Changes: []event.Change{{Op: event.OpUpdate, Namespace: "app.sbtest", Table: benchTable,
			Before: []any{id, int32(s.i * 7), "68487932199-96439406143-93774651418-41631865787-96406072701-20604855487-25459966574-28203206787-41238978918-19503783441", "22195207048-70116052123-74140395089-76317954521-98694025897"},
			After:  []any{id, int32(s.i*7 + 1), "68487932199-96439406143-93774651418-41631865787-96406072701-20604855487-25459966574-28203206787-41238978918-19503783442", "22195207048-70116052123-74140395089-76317954521-98694025897"}}}}, nil
}

func (s *benchSource) Close() error { return nil }

// consume does per Txn what the channel's reader does before the DAG:
// compute conflict keys. Beside it, like the channel's persister, the last
// position is saved every 100ms, so the relay can delete what was applied.
func consume(b *testing.B, src source.Source, n int, st *checkpoint.Store) {
	ctx := context.Background()
	var last atomic.Pointer[event.Position]
	stop := make(chan struct{})
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if p := last.Load(); p != nil && st != nil {
				_ = st.Save(testChannel, checkpoint.Checkpoint{Pos: *p, SavedAt: time.Now()})
			}
		}
	}()
	defer func() { close(stop); <-saved }()
	for i := 0; i < n; i++ {
		txn, err := src.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		_ = txn.ConflictKeys()
		last.Store(&txn.Pos)
	}
}

// BenchmarkRelayOnOff reads one-row Txns straight from a source, then
// through the relay (fsync batch), and reports both rates and their ratio.
// It measures the relay's own cost against an in-process source, which is
// far faster than any real one. The machine this runs on is shared: the
// off and on runs alternate over several rounds (on first in every other
// round) and the ratio is of their summed times, so that load drifting
// during the run weighs on both sides alike. Absolute rates are indicative
// only; the ratio and the CPU per Txn are what to compare.
func BenchmarkRelayOnOff(b *testing.B) {
	n := max(b.N, 20000)
	const rounds = 4
	var offTime, onTime, offCPU, onCPU time.Duration
	var held float64
	for round := 0; round < rounds; round++ {
		for side := 0; side < 2; side++ {
			if (side == 0) == (round%2 == 0) {
				start, cpu := time.Now(), cpuTime()
				consume(b, &benchSource{limit: n}, n, nil)
				offTime += time.Since(start)
				offCPU += cpuTime() - cpu
				continue
			}
			d, c, h := relayRun(b, n)
			onTime += d
			onCPU += c
			held = h
		}
	}
	total := float64(n * rounds)
	off, on := total/offTime.Seconds(), total/onTime.Seconds()
	b.ReportMetric(off, "txns/s-off")
	b.ReportMetric(on, "txns/s-on")
	b.ReportMetric(on/off, "ratio")
	b.ReportMetric(offCPU.Seconds()*1e6/total, "cpu-us/txn-off")
	b.ReportMetric(onCPU.Seconds()*1e6/total, "cpu-us/txn-on")
	b.ReportMetric(held, "bytes/txn-held")
	b.Logf("%d rounds of %d txns: relay off %.0f txns/s, on %.0f txns/s, ratio %.2f; process CPU per txn off %.1fµs, on %.1fµs",
		rounds, n, off, on, on/off, offCPU.Seconds()*1e6/total, onCPU.Seconds()*1e6/total)
}

// relayRun reads n Txns through a fresh relay and returns the time and
// process CPU they took (not counting opening and closing the relay) and
// the segment bytes per held Txn.
func relayRun(b *testing.B, n int) (time.Duration, time.Duration, float64) {
	dir := b.TempDir()
	st, err := checkpoint.Open(filepath.Join(dir, "cp"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := Open(Options{Channel: testChannel, Dir: filepath.Join(dir, "relay"), Store: st, MaxBytes: 256 << 20, Fsync: FsyncBatch,
		Open: func(context.Context, event.Position) (source.Source, error) { return &benchSource{limit: n}, nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	view, err := r.OpenSource(context.Background(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer view.Close()
	start, cpu := time.Now(), cpuTime()
	consume(b, view, n, st)
	d, c := time.Since(start), cpuTime()-cpu
	s := r.Status()
	return d, c, float64(s.Bytes) / float64(max(s.ReadSeq-s.AppliedSeq, 1))
}

// cpuTime is the process's user+system CPU time: on a shared machine it
// says more about the relay's cost than wall-clock rates.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
