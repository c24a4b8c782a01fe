package relay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/source"
)

// genSource is a deterministic source for the relay's unit tests: Txn i
// has position "p<i>" and a row that names i; opened at "p<i>" it goes on
// with i+1. limit < 0 streams for ever. The end-to-end tests use real
// servers.
type genSource struct {
	mu     sync.Mutex
	limit  int
	opens  []string
	issued atomic.Int64 // highest i handed out
	table  *event.Table
}

func newGen(limit int) *genSource { return &genSource{limit: limit, table: sampleTable()} }

func (g *genSource) open(_ context.Context, resume event.Position) (source.Source, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.opens = append(g.opens, resume.String())
	next := 1
	if resume != nil {
		n, err := strconv.Atoi(strings.TrimPrefix(resume.String(), "p"))
		if err != nil {
			return nil, fmt.Errorf("bad position %q", resume)
		}
		next = n + 1
	}
	return &genStream{g: g, next: next, done: make(chan struct{})}, nil
}

func (g *genSource) opened() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.opens...)
}

func genTxn(tbl *event.Table, i int) *event.Txn {
	return &event.Txn{Pos: event.Position("p" + strconv.Itoa(i)), Kind: event.KindDML,
		CommitTime: time.Unix(1700000000+int64(i), 0).UTC(),
		Changes: []event.Change{{Op: event.OpInsert, Namespace: "app.t", Table: tbl,
			After: []any{uint64(i), "row " + strconv.Itoa(i) + strings.Repeat("x", i%50), []byte{byte(i)}}}}}
}

type genStream struct {
	g         *genSource
	next      int
	done      chan struct{}
	closeOnce sync.Once
}

func (s *genStream) Next(ctx context.Context) (*event.Txn, error) {
	if s.g.limit >= 0 && s.next > s.g.limit {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, ErrClosed
		}
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, ErrClosed
	default:
	}
	t := genTxn(s.g.table, s.next)
	if int64(s.next) > s.g.issued.Load() {
		s.g.issued.Store(int64(s.next))
	}
	s.next++
	return t, nil
}

func (s *genStream) Position() event.Position { return event.Position("p" + strconv.Itoa(s.next-1)) }

func (s *genStream) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

const testChannel = "c1"

func openStore(t *testing.T, dir string) *checkpoint.Store {
	t.Helper()
	st, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func openRelay(t *testing.T, dir string, st *checkpoint.Store, g *genSource, tune func(*Options)) *Relay {
	t.Helper()
	o := Options{Channel: testChannel, Dir: dir, Store: st, Open: g.open, Poll: 10 * time.Millisecond}
	if tune != nil {
		tune(&o)
	}
	r, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// applier plays the channel: it reads the view and saves the checkpoint
// after each Txn, as the pipeline's persister would (less often).
func readN(t *testing.T, src source.Source, n int) []*event.Txn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make([]*event.Txn, 0, n)
	for len(out) < n {
		txn, err := src.Next(ctx)
		if err != nil {
			t.Fatalf("after %d txns: %v", len(out), err)
		}
		out = append(out, txn)
	}
	return out
}

func checkRange(t *testing.T, got []*event.Txn, from int, tbl *event.Table) {
	t.Helper()
	for k, txn := range got {
		want := genTxn(tbl, from+k)
		if txn.Pos.String() != want.Pos.String() || txn.Changes[0].After[0] != want.Changes[0].After[0] ||
			txn.Changes[0].After[1] != want.Changes[0].After[1] || !txn.CommitTime.Equal(want.CommitTime) {
			t.Fatalf("txn %d: got %s %v, want %s %v", k, txn.Pos, txn.Changes[0].After, want.Pos, want.Changes[0].After)
		}
	}
}

func save(t *testing.T, st *checkpoint.Store, pos event.Position) {
	t.Helper()
	if err := st.Save(testChannel, checkpoint.Checkpoint{Pos: pos, SavedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRelayServesInOrderAndDeletesApplied(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "cp"))
	defer st.Close()
	g := newGen(3000)
	r := openRelay(t, filepath.Join(dir, "relay"), st, g, func(o *Options) { o.MaxBytes = 1 << 20; o.SegmentBytes = 16 << 10 })
	defer r.Close()
	src, err := r.OpenSource(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got := readN(t, src, 3000)
	checkRange(t, got, 1, g.table)
	waitFor(t, "all 3000 read", func() bool { return r.Status().ReadSeq == 3000 })
	segs := r.Status().Segments
	if segs < 3 {
		t.Fatalf("%d segments; 16 KiB segments should have rolled", segs)
	}
	// Nothing applied: nothing deleted.
	time.Sleep(50 * time.Millisecond)
	if r.Status().Segments != segs {
		t.Fatal("segments were deleted before being applied")
	}
	save(t, st, got[1499].Pos)
	// The cleaner marks the applied position, then deletes.
	waitFor(t, "applied position 1500 and segments deleted", func() bool {
		s := r.Status()
		return s.AppliedSeq == 1500 && s.Segments < segs
	})
	mid := r.Status()
	if mid.Segments >= segs || mid.Txns != 1500 {
		t.Fatalf("after applying half: %d segments (was %d), %d txns held", mid.Segments, segs, mid.Txns)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "relay", "*.seg"))
	if len(files) != mid.Segments {
		t.Fatalf("%d files on disk, status says %d segments", len(files), mid.Segments)
	}
	save(t, st, got[2999].Pos)
	waitFor(t, "everything applied", func() bool { s := r.Status(); return s.AppliedSeq == 3000 && s.Txns == 0 })
}

func TestRelayRestartResumesBothPositions(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "cp"))
	defer st.Close()
	g := newGen(500)
	rdir := filepath.Join(dir, "relay")
	r := openRelay(t, rdir, st, g, nil)
	src, _ := r.OpenSource(context.Background(), nil)
	got := readN(t, src, 500)
	save(t, st, got[199].Pos) // the applier applied 200
	waitFor(t, "applied 200", func() bool { return r.Status().AppliedSeq == 200 })
	src.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	pos, ok, err := st.LoadRelay(testChannel)
	if err != nil || !ok || pos.Read.Seq != 500 || pos.Applied.Seq != 200 || pos.Read.Pos.String() != "p500" {
		t.Fatalf("relay positions in the store: %+v %v %v", pos, ok, err)
	}

	g.limit = 800
	r = openRelay(t, rdir, st, g, nil)
	defer r.Close()
	cp, _, _ := st.Load(testChannel)
	src, err = r.OpenSource(context.Background(), cp.Pos)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got = readN(t, src, 600)
	checkRange(t, got, 201, g.table)
	opens := g.opened()
	if last := opens[len(opens)-1]; last != "p500" {
		t.Fatalf("the source was reopened at %q, want the relay's read position p500 (opens %v)", last, opens)
	}
}

func TestRelayTruncatesTornRecord(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "cp"))
	defer st.Close()
	g := newGen(100)
	rdir := filepath.Join(dir, "relay")
	r := openRelay(t, rdir, st, g, func(o *Options) { o.Fsync = FsyncAlways })
	waitFor(t, "100 written", func() bool { return r.Status().ReadSeq == 100 })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(rdir, "*.seg"))
	last := files[len(files)-1]
	whole, _ := os.Stat(last)

	// A torn write: record 101 cut short, as a kill -9 mid-write leaves it.
	var next []byte
	{
		payload, err := newEncoder().appendTxn(nil, 101, genTxn(g.table, 101))
		if err != nil {
			t.Fatal(err)
		}
		next = appendRecord(nil, payload)
	}
	for _, cut := range []int{3, recHeader + 2, len(next) - 1} {
		f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(next[:cut])
		f.Close()

		g.limit = 150
		r = openRelay(t, rdir, st, g, nil)
		after, _ := os.Stat(last)
		if after.Size() != whole.Size() {
			r.Close()
			t.Fatalf("cut %d: segment is %d bytes after recovery, want %d (the torn record truncated)", cut, after.Size(), whole.Size())
		}
		src, _ := r.OpenSource(context.Background(), nil)
		got := readN(t, src, 150)
		checkRange(t, got, 1, g.table)
		if opens := g.opened(); opens[len(opens)-1] != "p100" {
			t.Fatalf("cut %d: source reopened at %q, want p100", cut, opens[len(opens)-1])
		}
		src.Close()
		r.Close()
		// Start the next cut from the state of 100 records again.
		for _, f := range files[1:] {
			_ = f
		}
		all, _ := filepath.Glob(filepath.Join(rdir, "*.seg"))
		for _, f := range all {
			if f != last && f > last {
				os.Remove(f)
			}
		}
		if err := os.Truncate(last, whole.Size()); err != nil {
			t.Fatal(err)
		}
		g.limit = 100
	}
	// A flipped byte inside the last record is caught by its checksum.
	data, _ := os.ReadFile(last)
	data[len(data)-2] ^= 0xff
	os.WriteFile(last, data, 0o640)
	r = openRelay(t, rdir, st, g, nil)
	defer r.Close()
	if s := r.Status(); s.ReadSeq != 99 || s.ReadPosition != "p99" {
		t.Fatalf("after a corrupt last record: read seq %d at %s, want 99 at p99", s.ReadSeq, s.ReadPosition)
	}
}

func TestRelayFullBlocksReaderWithoutLoss(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "cp"))
	defer st.Close()
	g := newGen(-1)
	const maxBytes = 64 << 10
	r := openRelay(t, filepath.Join(dir, "relay"), st, g, func(o *Options) { o.MaxBytes = maxBytes; o.SegmentBytes = 8 << 10 })
	defer r.Close()
	waitFor(t, "relay full", func() bool { return r.Status().Full })
	s := r.Status()
	if s.State != "relay full" || !strings.Contains(s.Reason, "relay full") {
		t.Fatalf("state %q reason %q, want relay full", s.State, s.Reason)
	}
	if s.Bytes > maxBytes {
		t.Fatalf("relay holds %d bytes, over max_bytes %d", s.Bytes, maxBytes)
	}
	// The reader is blocked: what the source handed out is what the relay
	// holds plus its bounded queue.
	issued := g.issued.Load()
	time.Sleep(100 * time.Millisecond)
	if g.issued.Load() > int64(s.ReadSeq)+readerQueue+maxGroup+2 {
		t.Fatalf("source read %d txns while the relay holds %d: the reader did not block", g.issued.Load(), s.ReadSeq)
	}
	_ = issued

	// The applier catches up in steps; nothing is lost or doubled.
	src, err := r.OpenSource(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const total = 6000
	read := 0
	for read < total {
		got := readN(t, src, 500)
		checkRange(t, got, read+1, g.table)
		read += len(got)
		save(t, st, got[len(got)-1].Pos)
	}
	if s := r.Status(); s.Bytes > maxBytes {
		t.Fatalf("relay holds %d bytes, over max_bytes %d", s.Bytes, maxBytes)
	}
	waitFor(t, "reading again", func() bool { return r.Status().ReadSeq > total })
}

func TestRelayMaxAgeDeletesAppliedActiveSegment(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "cp"))
	defer st.Close()
	g := newGen(50)
	r := openRelay(t, filepath.Join(dir, "relay"), st, g, func(o *Options) { o.MaxAge = 20 * time.Millisecond })
	defer r.Close()
	src, _ := r.OpenSource(context.Background(), nil)
	defer src.Close()
	got := readN(t, src, 50)
	time.Sleep(50 * time.Millisecond)
	if r.Status().Segments != 1 {
		t.Fatal("the unapplied active segment must stay whatever its age")
	}
	save(t, st, got[49].Pos)
	waitFor(t, "applied active segment deleted", func() bool { s := r.Status(); return s.Segments == 0 && s.Bytes == 0 })
	if s := r.Status(); s.AppliedSeq != 50 || s.ReadSeq != 50 {
		t.Fatalf("positions after deletion: %+v", s)
	}
}

func TestStateString(t *testing.T) {
	for _, tc := range []struct {
		state State
		want  string
	}{
		{StateStarting, "starting"},
		{StateReading, "reading"},
		{StateFull, "relay full"},
		{StateSourceRetrying, "source retrying"},
		{StateError, "error"},
		{StateStopped, "stopped"},
		{0, "State(0)"},
		{StateStopped + 1, "State(7)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.state.String(); got != tc.want {
				t.Fatalf("State(%d).String() = %q, want %q", int(tc.state), got, tc.want)
			}
		})
	}
}

// TestRelayFullInOneActiveSegment fills the relay while every record sits
// in the active segment (segments larger than max_bytes): only the writer
// may seal it, so room comes from the cleaner asking the waiting writer to
// seal the applied segment, which it then deletes.
func TestRelayFullInOneActiveSegment(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "cp"))
	defer st.Close()
	g := newGen(-1)
	const maxBytes = 32 << 10
	r := openRelay(t, filepath.Join(dir, "relay"), st, g, func(o *Options) { o.MaxBytes = maxBytes; o.SegmentBytes = 1 << 20 })
	defer r.Close()
	waitFor(t, "relay full", func() bool { return r.Status().Full })
	full := r.Status()
	if full.Segments != 1 || full.State != StateFull.String() {
		t.Fatalf("full relay: %d segments, state %q; want one active segment, %q", full.Segments, full.State, StateFull)
	}
	src, err := r.OpenSource(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got := readN(t, src, int(full.ReadSeq))
	checkRange(t, got, 1, g.table)
	save(t, st, got[len(got)-1].Pos)
	// Reading goes on only once the full segment was sealed and deleted.
	waitFor(t, "reading again", func() bool { return r.Status().ReadSeq > full.ReadSeq })
	more := readN(t, src, 200)
	checkRange(t, more, int(full.ReadSeq)+1, g.table)
	files, _ := filepath.Glob(filepath.Join(dir, "relay", "*.seg"))
	if first := filepath.Base(files[0]); first == segName(1) {
		t.Fatalf("segment %s is still on disk after all of it was applied (files %v)", first, files)
	}
}
