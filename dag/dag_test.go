package dag

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type testItem struct {
	keys    []uint64
	barrier bool
	size    int
}

func (it testItem) ConflictKeys() []uint64 { return it.keys }
func (it testItem) IsBarrier() bool        { return it.barrier }
func (it testItem) SizeBytes() int         { return it.size }

// blockedFor is how long a test waits before concluding that a call is
// blocked. It only bounds how quickly a wrongly-unblocked call is noticed;
// no test passes or fails on how fast anything runs.
const blockedFor = 20 * time.Millisecond

// TestSchedules runs small hand-written workloads and checks which seqs are
// handed out at each step. Steps:
//
//	add SEQ [KEY...]   add an item; KEY is a letter; "!" makes it a barrier
//	ready [SEQ...]     NextBatch(all) returns exactly these seqs, in order;
//	                   with no SEQ, nothing is ready
//	done SEQ...        Done each seq
//	empty              the scheduler holds no per-item state
func TestSchedules(t *testing.T) {
	tests := []struct {
		name  string
		steps []string
		chain bool // Options.Chain
	}{
		{"key chain", []string{
			"add 1 a", "add 2 a", "add 3 a", "add 4 b",
			"ready 1 4",
			"done 4", "ready",
			"done 1", "ready 2",
			"done 2", "ready 3",
			"done 3", "ready",
		}, false},
		{"multi-key join", []string{
			"add 1 a", "add 2 b", "add 3 a b", "add 4 b",
			"ready 1 2",
			"done 2", "ready",
			"done 1", "ready 3",
			"done 3", "ready 4",
			"done 4", "ready",
		}, false},
		{"barrier in the middle", []string{
			"add 1 a", "add 2 b", "add 3 !", "add 4 c", "add 5",
			"ready 1 2",
			"done 1", "ready",
			"done 2", "ready 3",
			"done 3", "ready 4 5",
			"done 4 5", "ready",
		}, false},
		{"no-key items are ready at once", []string{
			"add 1", "add 2", "add 3 a", "add 4",
			"ready 1 2 3 4",
		}, false},
		{"no-key items wait for a barrier", []string{
			"add 1", "add 2 !", "add 3", "add 4",
			"ready 1",
			"done 1", "ready 2",
			"done 2", "ready 3 4",
		}, false},
		{"consecutive barriers", []string{
			"add 1 !", "add 2 !", "add 3 a", "add 4 !",
			"ready 1",
			"done 1", "ready 2",
			"done 2", "ready 3",
			"done 3", "ready 4",
			"done 4", "ready",
		}, false},
		{"barrier with an empty window before it", []string{
			"add 1 a", "ready 1", "done 1",
			"add 2 !", "ready 2",
			"add 3 a", "ready",
			"done 2", "ready 3",
		}, false},
		{"items added while the barrier runs", []string{
			"add 1 a", "add 2 !", "ready 1",
			"add 3 a", "add 4 b", "done 1",
			"ready 2",
			"add 5", "ready",
			"done 2", "ready 3 4 5",
		}, false},
		{"released items come out in seq order", []string{
			"add 1 a", "add 2 b", "add 3 a", "add 4 b",
			"ready 1 2",
			"done 2", "done 1",
			"ready 3 4",
		}, false},
		{"add after hand-out still waits", []string{
			"add 1 a", "ready 1",
			"add 2 a", "ready",
			"done 1", "ready 2",
		}, false},
		{"key free again after done", []string{
			"add 1 a", "ready 1", "done 1",
			"add 2 a", "ready 2",
		}, false},
		{"duplicate keys in one item", []string{
			"add 1 a a b", "add 2 a a", "add 3 b b",
			"ready 1",
			"done 1", "ready 2 3",
			"done 2 3", "ready",
		}, false},
		{"seqs with gaps", []string{
			"add 10 a", "add 20 b", "add 35 a b", "add 36",
			"ready 10 20 36",
			"done 20 36 10",
			"ready 35",
		}, false},
		{"diamond", []string{
			"add 1 a b", "add 2 a", "add 3 b", "add 4 a b",
			"ready 1",
			"done 1", "ready 2 3",
			"done 3", "ready",
			"done 2", "ready 4",
		}, false},
		{"chain: a key's chain goes out in one batch", []string{
			"add 1 a", "add 2 a", "add 3 a", "add 4 b",
			"ready 1 2 3 4",
			"done 1 2 3 4", "ready", "empty",
		}, true},
		{"chain: joins only when every predecessor is in the batch", []string{
			"add 1 a", "ready 1",
			"add 2 b", "add 3 a b", "add 4 b",
			"ready 2",
			"done 1", "ready",
			"done 2", "ready 3 4",
			"done 3 4", "empty",
		}, true},
		{"chain: diamond", []string{
			"add 1 a b", "add 2 a", "add 3 b", "add 4 a b", "add 5 c",
			"ready 1 2 3 4 5",
			"done 1 2 3 4 5", "empty",
		}, true},
		{"chain: a barrier neither joins nor is joined", []string{
			"add 1 a", "add 2 !", "add 3 a", "add 4 a",
			"ready 1",
			"done 1", "ready 2",
			"done 2", "ready 3 4",
			"done 3 4", "empty",
		}, true},
		{"chain: done before its predecessors", []string{
			"add 1 a", "add 2 a b", "add 3 b",
			"ready 1 2 3",
			"done 3 2", "add 4 a b", "ready",
			"done 1", "ready 4",
			"done 4", "empty",
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New[testItem](Options{Chain: tc.chain})
			defer s.Close()
			for _, step := range tc.steps {
				runStep(t, s, step)
			}
		})
	}
}

func runStep(t *testing.T, s *Scheduler[testItem], step string) {
	t.Helper()
	ctx := context.Background()
	fields := strings.Fields(step)
	switch fields[0] {
	case "add":
		seq := mustSeq(t, fields[1])
		var it testItem
		for _, f := range fields[2:] {
			if f == "!" {
				it.barrier = true
				continue
			}
			it.keys = append(it.keys, uint64(f[0]))
		}
		if err := s.Add(ctx, seq, it); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	case "ready":
		var want []uint64
		for _, f := range fields[1:] {
			want = append(want, mustSeq(t, f))
		}
		if len(want) == 0 {
			if st := s.Stats(); st.Ready != 0 {
				t.Fatalf("%s: %d items ready, want none", step, st.Ready)
			}
			return
		}
		batch, err := s.NextBatch(ctx, 1000, 0)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got := seqs(batch); !slices.Equal(got, want) {
			t.Fatalf("%s: got ready %v", step, got)
		}
		if st := s.Stats(); st.Ready != 0 {
			t.Fatalf("%s: %d items still ready", step, st.Ready)
		}
	case "empty":
		assertEmpty(t, s)
	case "done":
		for _, f := range fields[1:] {
			if err := s.Done(mustSeq(t, f)); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
	default:
		t.Fatalf("bad step %q", step)
	}
}

func mustSeq(t *testing.T, s string) uint64 {
	t.Helper()
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("bad seq %q", s)
	}
	return seq
}

func seqs(batch []Entry[testItem]) []uint64 {
	out := make([]uint64, len(batch))
	for i, e := range batch {
		out[i] = e.Seq
	}
	return out
}

func TestNextBatchLimits(t *testing.T) {
	// Seqs 1..5 are independent, with sizes 10, 20, 30, 40, 50.
	tests := []struct {
		name     string
		maxItems int
		maxBytes int
		want     []uint64
	}{
		{"max items", 2, 0, []uint64{1, 2}},
		{"max bytes exact", 10, 60, []uint64{1, 2, 3}},
		{"max bytes stops in seq order", 10, 35, []uint64{1, 2}},
		{"first item over max bytes alone", 10, 5, []uint64{1}},
		{"no limits", 0, 0, []uint64{1}},
		{"negative limits", -1, -1, []uint64{1}},
		{"all", 100, 1000, []uint64{1, 2, 3, 4, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New[testItem](Options{})
			defer s.Close()
			for i := range 5 {
				mustAdd(t, s, uint64(i+1), testItem{keys: []uint64{uint64(i)}, size: 10 * (i + 1)})
			}
			batch, err := s.NextBatch(context.Background(), tc.maxItems, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(batch); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if got, want := s.Stats().Ready, 5-len(tc.want); got != want {
				t.Fatalf("Ready = %d, want %d", got, want)
			}
		})
	}
}

// TestChainLimits: a chain joins a batch only within its limits; the rest
// of the chain stays waiting and goes out once its predecessors are Done.
func TestChainLimits(t *testing.T) {
	s := New[testItem](Options{Chain: true})
	defer s.Close()
	for i := range 6 { // one key: 1 → 2 → … → 6, sizes 10 … 60
		mustAdd(t, s, uint64(i+1), testItem{keys: []uint64{7}, size: 10 * (i + 1)})
	}
	ctx := context.Background()
	for _, tc := range []struct {
		maxItems, maxBytes int
		want               []uint64
	}{
		{3, 0, []uint64{1, 2, 3}},
		{10, 80, []uint64{4}}, // 40 + 50 > 80: 5 stays waiting
		{10, 0, []uint64{5, 6}},
	} {
		if got := s.Stats().Ready; got != 1 {
			t.Fatalf("Ready = %d before the batch %v, want 1", got, tc.want)
		}
		batch, err := s.NextBatch(ctx, tc.maxItems, tc.maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqs(batch); !slices.Equal(got, tc.want) {
			t.Fatalf("NextBatch(%d, %d) = %v, want %v", tc.maxItems, tc.maxBytes, got, tc.want)
		}
		if got := s.Stats().Ready; got != 0 {
			t.Fatalf("Ready = %d after the batch %v, want 0", got, tc.want)
		}
		for _, e := range batch {
			if err := s.Done(e.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	assertEmpty(t, s)
}

func mustAdd(t *testing.T, s *Scheduler[testItem], seq uint64, it testItem) {
	t.Helper()
	if err := s.Add(context.Background(), seq, it); err != nil {
		t.Fatalf("add %d: %v", seq, err)
	}
}

func mustTakeDone(t *testing.T, s *Scheduler[testItem], want uint64) {
	t.Helper()
	batch, err := s.NextBatch(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 1 || batch[0].Seq != want {
		t.Fatalf("got batch %v, want [%d]", seqs(batch), want)
	}
	if err := s.Done(want); err != nil {
		t.Fatal(err)
	}
}

func addAsync(ctx context.Context, s *Scheduler[testItem], seq uint64, it testItem) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- s.Add(ctx, seq, it) }()
	return errc
}

func nextBatchAsync(ctx context.Context, s *Scheduler[testItem]) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := s.NextBatch(ctx, 10, 0)
		errc <- err
	}()
	return errc
}

func assertBlocked(t *testing.T, errc <-chan error) {
	t.Helper()
	select {
	case err := <-errc:
		t.Fatalf("call returned %v, want it blocked", err)
	case <-time.After(blockedFor):
	}
}

func assertReturns(t *testing.T, errc <-chan error, want error) {
	t.Helper()
	select {
	case err := <-errc:
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Fatalf("got %v, want %v", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("call still blocked, want %v", want)
	}
}

func TestWindow(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		fill    []testItem // admitted without blocking, all independent
		blocked testItem   // then blocks
		doneOK  int        // Done of this many fill items lets it in
	}{
		{
			name:    "max txns",
			opts:    Options{MaxTxns: 2},
			fill:    []testItem{{keys: []uint64{1}}, {keys: []uint64{2}}},
			blocked: testItem{keys: []uint64{3}},
			doneOK:  1,
		},
		{
			name:    "max bytes",
			opts:    Options{MaxBytes: 25},
			fill:    []testItem{{keys: []uint64{1}, size: 10}, {keys: []uint64{2}, size: 10}},
			blocked: testItem{keys: []uint64{3}, size: 10},
			doneOK:  1,
		},
		{
			name:    "huge item into empty window, then blocks the next",
			opts:    Options{MaxBytes: 10},
			fill:    []testItem{{keys: []uint64{1}, size: 1000}},
			blocked: testItem{keys: []uint64{2}, size: 1},
			doneOK:  1,
		},
		{
			name:    "huge item waits for an empty window",
			opts:    Options{MaxBytes: 10},
			fill:    []testItem{{keys: []uint64{1}, size: 4}, {keys: []uint64{2}, size: 4}},
			blocked: testItem{keys: []uint64{3}, size: 1000},
			doneOK:  2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New[testItem](tc.opts)
			defer s.Close()
			for i, it := range tc.fill {
				mustAdd(t, s, uint64(i+1), it)
			}
			next := uint64(len(tc.fill) + 1)
			errc := addAsync(context.Background(), s, next, tc.blocked)
			assertBlocked(t, errc)
			for i := range tc.doneOK {
				if i > 0 {
					assertBlocked(t, errc)
				}
				mustTakeDone(t, s, uint64(i+1))
			}
			assertReturns(t, errc, nil)
			st := s.Stats()
			if want := len(tc.fill) - tc.doneOK + 1; st.InFlight != want {
				t.Fatalf("InFlight = %d, want %d", st.InFlight, want)
			}
		})
	}
}

func TestUnblock(t *testing.T) {
	fullWindow := func(t *testing.T) *Scheduler[testItem] {
		s := New[testItem](Options{MaxTxns: 1})
		mustAdd(t, s, 1, testItem{keys: []uint64{1}})
		if _, err := s.NextBatch(context.Background(), 1, 0); err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		call func(ctx context.Context, s *Scheduler[testItem]) <-chan error
	}{
		{"Add", func(ctx context.Context, s *Scheduler[testItem]) <-chan error {
			return addAsync(ctx, s, 2, testItem{keys: []uint64{2}})
		}},
		{"NextBatch", nextBatchAsync},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/cancel", func(t *testing.T) {
			s := fullWindow(t)
			defer s.Close()
			ctx, cancel := context.WithCancel(context.Background())
			errc := tc.call(ctx, s)
			assertBlocked(t, errc)
			cancel()
			assertReturns(t, errc, context.Canceled)
		})
		t.Run(tc.name+"/deadline", func(t *testing.T) {
			s := fullWindow(t)
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), blockedFor)
			defer cancel()
			assertReturns(t, tc.call(ctx, s), context.DeadlineExceeded)
		})
		t.Run(tc.name+"/close", func(t *testing.T) {
			s := fullWindow(t)
			errc := tc.call(context.Background(), s)
			assertBlocked(t, errc)
			s.Close()
			assertReturns(t, errc, ErrClosed)
		})
		t.Run(tc.name+"/already canceled", func(t *testing.T) {
			s := New[testItem](Options{})
			defer s.Close()
			mustAdd(t, s, 1, testItem{})
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			assertReturns(t, tc.call(ctx, s), context.Canceled)
			if st := s.Stats(); st.InFlight != 1 || st.Ready != 1 {
				t.Fatalf("stats %+v changed by a canceled call", st)
			}
		})
	}
}

func TestManyWaitersClose(t *testing.T) {
	s := New[testItem](Options{})
	var errcs []<-chan error
	for range 8 {
		errcs = append(errcs, nextBatchAsync(context.Background(), s))
	}
	for _, errc := range errcs {
		assertBlocked(t, errc)
	}
	s.Close()
	s.Close() // idempotent
	for _, errc := range errcs {
		assertReturns(t, errc, ErrClosed)
	}
}

func TestWakeupPassedOn(t *testing.T) {
	// Several workers wait; items become ready one Done at a time, and one
	// worker gives up. Every ready item must still reach a worker.
	s := New[testItem](Options{})
	defer s.Close()
	ctx := context.Background()
	const workers = 4
	got := make(chan uint64, 100)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				batch, err := s.NextBatch(ctx, 1, 0)
				if err != nil {
					return
				}
				got <- batch[0].Seq
			}
		})
	}
	cancelCtx, cancel := context.WithCancel(ctx)
	quitter := nextBatchAsync(cancelCtx, s)
	cancel()
	assertReturns(t, quitter, context.Canceled)

	mustAdd(t, s, 1, testItem{barrier: true})
	for i := uint64(2); i <= 20; i++ {
		mustAdd(t, s, i, testItem{keys: []uint64{i}})
	}
	if seq := <-got; seq != 1 {
		t.Fatalf("got %d first, want the barrier", seq)
	}
	if err := s.Done(1); err != nil {
		t.Fatal(err)
	}
	for range 19 {
		seq := <-got
		if err := s.Done(seq); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	wg.Wait()
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, s *Scheduler[testItem]) error
		want error
	}{
		{"add same seq", func(t *testing.T, s *Scheduler[testItem]) error {
			mustAdd(t, s, 5, testItem{})
			return s.Add(ctx, 5, testItem{})
		}, ErrSeqOrder},
		{"add smaller seq", func(t *testing.T, s *Scheduler[testItem]) error {
			mustAdd(t, s, 5, testItem{})
			return s.Add(ctx, 4, testItem{})
		}, ErrSeqOrder},
		{"done unknown", func(t *testing.T, s *Scheduler[testItem]) error {
			return s.Done(7)
		}, ErrUnknownSeq},
		{"done twice", func(t *testing.T, s *Scheduler[testItem]) error {
			mustAdd(t, s, 1, testItem{})
			mustTakeDone(t, s, 1)
			return s.Done(1)
		}, ErrUnknownSeq},
		{"done before hand-out, ready", func(t *testing.T, s *Scheduler[testItem]) error {
			mustAdd(t, s, 1, testItem{})
			return s.Done(1)
		}, ErrNotHandedOut},
		{"done before hand-out, waiting", func(t *testing.T, s *Scheduler[testItem]) error {
			mustAdd(t, s, 1, testItem{keys: []uint64{1}})
			mustAdd(t, s, 2, testItem{keys: []uint64{1}})
			return s.Done(2)
		}, ErrNotHandedOut},
		{"add after close", func(t *testing.T, s *Scheduler[testItem]) error {
			s.Close()
			return s.Add(ctx, 1, testItem{})
		}, ErrClosed},
		{"next batch after close with ready items", func(t *testing.T, s *Scheduler[testItem]) error {
			mustAdd(t, s, 1, testItem{})
			s.Close()
			_, err := s.NextBatch(ctx, 1, 0)
			return err
		}, ErrClosed},
		{"done after close works", func(t *testing.T, s *Scheduler[testItem]) error {
			mustAdd(t, s, 1, testItem{})
			if _, err := s.NextBatch(ctx, 1, 0); err != nil {
				t.Fatal(err)
			}
			s.Close()
			return s.Done(1)
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New[testItem](Options{})
			defer s.Close()
			err := tc.run(t, s)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestStats(t *testing.T) {
	s := New[testItem](Options{})
	defer s.Close()
	mustAdd(t, s, 1, testItem{keys: []uint64{1}, size: 10})
	mustAdd(t, s, 2, testItem{keys: []uint64{1}, size: 20})
	mustAdd(t, s, 3, testItem{keys: []uint64{2}, size: -5})
	if got, want := s.Stats(), (Stats{InFlight: 3, Ready: 2, Bytes: 30}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	mustTakeDone(t, s, 1)
	if got, want := s.Stats(), (Stats{InFlight: 2, Ready: 2, Bytes: 20}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// workload is a random sequence of items; item i has seq seqOf(i).
type workload struct {
	items []testItem
	// prevByKey[i][j] is the index of the latest item before i sharing
	// items[i].keys[j], or -1.
	prevByKey [][]int
	// prevBarrier[i] is the index of the latest barrier before i, or -1.
	prevBarrier []int
}

func seqOf(i int) uint64     { return uint64(i)*3 + 2 }
func indexOf(seq uint64) int { return int((seq - 2) / 3) }

func newWorkload(rng *rand.Rand, n, keySpace int) *workload {
	w := &workload{
		items:       make([]testItem, n),
		prevByKey:   make([][]int, n),
		prevBarrier: make([]int, n),
	}
	lastByKey := map[uint64]int{}
	lastBarrier := -1
	for i := range n {
		it := testItem{size: 1 + rng.IntN(100)}
		switch r := rng.IntN(100); {
		case r < 2:
			it.barrier = true
		case r < 5:
			// no keys
		default:
			for range 1 + rng.IntN(4) {
				it.keys = append(it.keys, uint64(rng.IntN(keySpace)))
			}
		}
		w.items[i] = it
		w.prevBarrier[i] = lastBarrier
		for _, k := range it.keys {
			prev, ok := lastByKey[k]
			if !ok {
				prev = -1
			}
			w.prevByKey[i] = append(w.prevByKey[i], prev)
		}
		for _, k := range it.keys {
			lastByKey[k] = i
		}
		if it.barrier {
			lastBarrier = i
		}
	}
	return w
}

// TestRandomWorkloads runs seeded random workloads through concurrent
// workers and checks the scheduling invariants as each item starts.
func TestRandomWorkloads(t *testing.T) {
	n := 20000
	switch {
	case testing.Short():
		n = 2000
	case raceEnabled:
		n = 5000
	}
	tests := []struct {
		seed     uint64
		keySpace int
		workers  int
		opts     Options
	}{
		{seed: 1, keySpace: 16, workers: 8, opts: Options{MaxTxns: 128, MaxBytes: 4000}},
		{seed: 2, keySpace: 64, workers: 4, opts: Options{MaxTxns: 1000}},
		{seed: 3, keySpace: 8, workers: 16, opts: Options{MaxTxns: 50, MaxBytes: 1000}},
		{seed: 4, keySpace: 256, workers: 8, opts: Options{}},
		{seed: 5, keySpace: 32, workers: 2, opts: Options{MaxTxns: 10, MaxBytes: 150}},
		{seed: 6, keySpace: 16, workers: 8, opts: Options{MaxTxns: 128, MaxBytes: 4000, Chain: true}},
		{seed: 7, keySpace: 4, workers: 16, opts: Options{MaxTxns: 500, Chain: true}},
		{seed: 8, keySpace: 256, workers: 4, opts: Options{Chain: true}},
		{seed: 9, keySpace: 64, workers: 8, opts: Options{MaxTxns: 1000, Chain: true, Linger: time.Millisecond}},
		{seed: 10, keySpace: 8, workers: 16, opts: Options{MaxTxns: 100, MaxBytes: 2000, Linger: 100 * time.Microsecond}},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("seed=%d/keys=%d/workers=%d/chain=%v/linger=%s", tc.seed, tc.keySpace, tc.workers, tc.opts.Chain, tc.opts.Linger)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runRandomWorkload(t, tc.seed, n, tc.keySpace, tc.workers, tc.opts)
		})
	}
}

func runRandomWorkload(t *testing.T, seed uint64, n, keySpace, workers int, opts Options) {
	w := newWorkload(rand.New(rand.NewPCG(seed, 0)), n, keySpace)
	s := New[testItem](opts)
	defer s.Close()
	ctx := context.Background()

	started := make([]atomic.Bool, n)
	done := make([]atomic.Bool, n)
	var doneCount atomic.Int64
	allDone := make(chan struct{})

	var logMu sync.Mutex
	applyOrder := map[uint64][]int{} // key -> indexes in start order

	// checkStart checks item i as it starts; before holds the seqs of its
	// batch that precede it (Options.Chain lets a predecessor be one).
	checkStart := func(i int, before map[uint64]bool) {
		if !started[i].CompareAndSwap(false, true) {
			t.Errorf("seq %d handed out twice", seqOf(i))
			return
		}
		for j, prev := range w.prevByKey[i] {
			if prev >= 0 && !done[prev].Load() && !before[seqOf(prev)] {
				t.Errorf("seq %d started before seq %d (key %d) was done",
					seqOf(i), seqOf(prev), w.items[i].keys[j])
			}
		}
		if b := w.prevBarrier[i]; b >= 0 && !done[b].Load() {
			t.Errorf("seq %d started before barrier seq %d was done", seqOf(i), seqOf(b))
		}
		if w.items[i].barrier {
			for j := range i {
				if !done[j].Load() {
					t.Errorf("barrier seq %d started before seq %d was done", seqOf(i), seqOf(j))
					break
				}
			}
		}
		logMu.Lock()
		for _, k := range w.items[i].keys {
			if l := applyOrder[k]; len(l) == 0 || l[len(l)-1] != i {
				applyOrder[k] = append(l, i)
			}
		}
		logMu.Unlock()
	}

	checkBatch := func(batch []Entry[testItem]) {
		if len(batch) == 0 {
			t.Errorf("empty batch")
		}
		seen := map[uint64]uint64{}
		for j, e := range batch {
			if j > 0 && e.Seq <= batch[j-1].Seq {
				t.Errorf("batch %v not in seq order", seqs(batch))
			}
			if e.Item.barrier && len(batch) > 1 {
				t.Errorf("barrier seq %d in batch %v", e.Seq, seqs(batch))
			}
			for _, k := range e.Item.keys {
				if other, ok := seen[k]; ok && other != e.Seq && !opts.Chain {
					t.Errorf("seqs %d and %d share key %d in one batch", other, e.Seq, k)
				}
				seen[k] = e.Seq
			}
		}
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		for i, it := range w.items {
			if err := s.Add(ctx, seqOf(i), it); err != nil {
				t.Errorf("add seq %d: %v", seqOf(i), err)
				return
			}
		}
	})
	for wk := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(wk)+1))
			for {
				batch, err := s.NextBatch(ctx, 1+rng.IntN(8), 50+rng.IntN(300))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("next batch: %v", err)
					return
				}
				checkBatch(batch)
				before := map[uint64]bool{}
				for _, e := range batch {
					checkStart(indexOf(e.Seq), before)
					before[e.Seq] = true
				}
				switch r := rng.IntN(100); {
				case r < 60:
					runtime.Gosched()
				case r < 61:
					time.Sleep(time.Duration(rng.IntN(50)) * time.Microsecond)
				}
				// Done in any order: a chained item may be reported
				// before its predecessors.
				rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				for _, e := range batch {
					done[indexOf(e.Seq)].Store(true)
					if err := s.Done(e.Seq); err != nil {
						t.Errorf("done: %v", err)
					}
					if doneCount.Add(1) == int64(n) {
						close(allDone)
					}
				}
			}
		})
	}

	// Fail only when no item completes for a long time, so a slow or
	// loaded machine does not fail the test.
	ticker := time.NewTicker(20 * time.Second)
	defer ticker.Stop()
	lastCount := int64(-1)
wait:
	for {
		select {
		case <-allDone:
			break wait
		case <-ticker.C:
			count := doneCount.Load()
			if count == lastCount {
				t.Errorf("stuck: %d of %d items done, stats %+v", count, n, s.Stats())
				break wait
			}
			lastCount = count
		}
	}
	s.Close()
	wg.Wait()
	if t.Failed() {
		return
	}

	for i := range n {
		if !done[i].Load() {
			t.Fatalf("seq %d never done", seqOf(i))
		}
	}
	itemsByKey := map[uint64]int{}
	for _, it := range w.items {
		for j, k := range it.keys {
			if !slices.Contains(it.keys[:j], k) {
				itemsByKey[k]++
			}
		}
	}
	for k, order := range applyOrder {
		if !slices.IsSorted(order) {
			t.Fatalf("key %d applied in order %v", k, order)
		}
		if len(order) != itemsByKey[k] {
			t.Fatalf("key %d: %d items applied, want %d", k, len(order), itemsByKey[k])
		}
	}
	assertEmpty(t, s)
}

// assertEmpty checks that a drained scheduler holds no per-item state.
func assertEmpty(t *testing.T, s *Scheduler[testItem]) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight != 0 || s.bytes != 0 || len(s.nodes) != 0 || len(s.lastByKey) != 0 ||
		s.lastBarrier != nil || len(s.ready) != 0 || s.segment.pending != 0 {
		t.Fatalf("state left after drain: inFlight=%d bytes=%d nodes=%d keys=%d barrier=%v ready=%d segment=%d",
			s.inFlight, s.bytes, len(s.nodes), len(s.lastByKey), s.lastBarrier != nil, len(s.ready), s.segment.pending)
	}
}

func TestDrainedStateIsEmpty(t *testing.T) {
	s := New[testItem](Options{})
	defer s.Close()
	for _, step := range []string{
		"add 1 a b", "add 2 a", "add 3 !", "add 4 c", "add 5",
		"ready 1", "done 1", "ready 2", "done 2", "ready 3", "done 3",
		"ready 4 5", "done 5 4",
	} {
		runStep(t, s, step)
	}
	assertEmpty(t, s)
}

// BenchmarkScheduler measures Add+NextBatch+Done throughput for items with
// 4 conflict keys.
func BenchmarkScheduler(b *testing.B) {
	for _, keySpace := range []int{1 << 20, 4096} {
		items := benchItems(keySpace)
		b.Run(fmt.Sprintf("serial/keys=%d", keySpace), func(b *testing.B) {
			benchSerial(b, items)
		})
		b.Run(fmt.Sprintf("workers=4/keys=%d", keySpace), func(b *testing.B) {
			benchWorkers(b, items, 4)
		})
	}
}

func benchItems(keySpace int) []testItem {
	rng := rand.New(rand.NewPCG(42, 0))
	items := make([]testItem, 1<<16)
	for i := range items {
		keys := make([]uint64, 4)
		for j := range keys {
			keys[j] = rng.Uint64N(uint64(keySpace)) * 0x9e3779b97f4a7c15
		}
		items[i] = testItem{keys: keys, size: 200}
	}
	return items
}

// benchSerial runs the reader and one worker in the same goroutine, keeping
// about lag items in flight: the cost of the scheduler alone, on one core.
func benchSerial(b *testing.B, items []testItem) {
	const lag = 1024
	ctx := context.Background()
	s := New[testItem](Options{MaxTxns: 2 * lag})
	defer s.Close()
	inFlight := 0
	drain := func() {
		batch, err := s.NextBatch(ctx, 64, 0)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range batch {
			if err := s.Done(e.Seq); err != nil {
				b.Fatal(err)
			}
		}
		inFlight -= len(batch)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpuStart, cpuOK := processCPUTime()
	for i := range b.N {
		if err := s.Add(ctx, uint64(i), items[i&(len(items)-1)]); err != nil {
			b.Fatal(err)
		}
		inFlight++
		for inFlight >= lag {
			drain()
		}
	}
	for inFlight > 0 {
		drain()
	}
	reportRates(b, cpuStart, cpuOK)
}

// benchWorkers runs one reader and several workers on separate goroutines.
func benchWorkers(b *testing.B, items []testItem, workers int) {
	ctx := context.Background()
	s := New[testItem](Options{})
	defer s.Close()
	var doneCount atomic.Int64
	allDone := make(chan struct{})
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpuStart, cpuOK := processCPUTime()
	for range workers {
		wg.Go(func() {
			for {
				batch, err := s.NextBatch(ctx, 16, 0)
				if err != nil {
					return
				}
				for _, e := range batch {
					if err := s.Done(e.Seq); err != nil {
						b.Error(err)
					}
				}
				if doneCount.Add(int64(len(batch))) == int64(b.N) {
					close(allDone)
				}
			}
		})
	}
	for i := range b.N {
		if err := s.Add(ctx, uint64(i), items[i&(len(items)-1)]); err != nil {
			b.Fatal(err)
		}
	}
	<-allDone
	b.StopTimer()
	reportRates(b, cpuStart, cpuOK)
	s.Close()
	wg.Wait()
}

// reportRates reports items per wall-clock second and items per second of
// process CPU time; the latter is the scheduler's cost on one core even when
// the machine is shared.
func reportRates(b *testing.B, cpuStart time.Duration, cpuOK bool) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
	if cpuEnd, ok := processCPUTime(); ok && cpuOK && cpuEnd > cpuStart {
		b.ReportMetric(float64(b.N)/(cpuEnd-cpuStart).Seconds(), "items/cpu-s")
	}
}

// TestLinger: with Options.Linger, NextBatch hands out a partial batch at
// once when nothing else runs, and otherwise waits for a full batch (by
// count or bytes), for the running batches to be Done, or for Linger to
// pass. Timing is never asserted: the long-Linger cases can only return
// through the event they test.
func TestLinger(t *testing.T) {
	ctx := context.Background()
	newRunning := func(t *testing.T, linger time.Duration) *Scheduler[testItem] {
		t.Helper()
		s := New[testItem](Options{Linger: linger})
		mustAdd(t, s, 1, testItem{keys: []uint64{1}, size: 10})
		if b, err := s.NextBatch(ctx, 4, 0); err != nil || !slices.Equal(seqs(b), []uint64{1}) {
			t.Fatalf("first batch %v, %v; want [1] at once (nothing was running)", seqs(b), err)
		}
		mustAdd(t, s, 2, testItem{keys: []uint64{2}, size: 10})
		return s
	}
	next := func(s *Scheduler[testItem], maxItems, maxBytes int) <-chan []uint64 {
		out := make(chan []uint64, 1)
		go func() {
			b, err := s.NextBatch(ctx, maxItems, maxBytes)
			if err != nil {
				out <- nil
				return
			}
			out <- seqs(b)
		}()
		return out
	}
	got := func(t *testing.T, c <-chan []uint64, want []uint64) {
		t.Helper()
		select {
		case b := <-c:
			if !slices.Equal(b, want) {
				t.Fatalf("batch %v, want %v", b, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("NextBatch still waiting, want %v", want)
		}
	}
	blocked := func(t *testing.T, c <-chan []uint64) {
		t.Helper()
		select {
		case b := <-c:
			t.Fatalf("NextBatch returned %v while a batch was running and the next was not full", b)
		case <-time.After(blockedFor):
		}
	}

	add := func(seq, key uint64, size int) func(*testing.T, *Scheduler[testItem]) {
		return func(t *testing.T, s *Scheduler[testItem]) {
			mustAdd(t, s, seq, testItem{keys: []uint64{key}, size: size})
		}
	}
	done := func(seq uint64) func(*testing.T, *Scheduler[testItem]) {
		return func(t *testing.T, s *Scheduler[testItem]) {
			if err := s.Done(seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each case: seq 1 is running and seq 2 ready; NextBatch(maxItems,
	// maxBytes) stays blocked before each step and returns want after
	// the last.
	cases := []struct {
		name               string
		linger             time.Duration
		maxItems, maxBytes int
		steps              []func(*testing.T, *Scheduler[testItem])
		want               []uint64
	}{
		{"waits for a full batch by count", time.Hour, 3, 0, []func(*testing.T, *Scheduler[testItem]){add(3, 3, 10), add(4, 4, 10)}, []uint64{2, 3, 4}},
		{"waits for a full batch by bytes", time.Hour, 100, 25, []func(*testing.T, *Scheduler[testItem]){add(3, 3, 20)}, []uint64{2}},
		{"stops waiting when nothing runs", time.Hour, 3, 0, []func(*testing.T, *Scheduler[testItem]){done(1)}, []uint64{2}},
		{"stops waiting after Linger", 20 * time.Millisecond, 3, 0, nil, []uint64{2}},
		// 3 waits for seq 1; its Done makes 3 ready with nothing running.
		{"a dependent of the running batch is not waited for", time.Hour, 3, 0,
			[]func(*testing.T, *Scheduler[testItem]){add(3, 1, 10), done(1)}, []uint64{2, 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newRunning(t, tc.linger)
			defer s.Close()
			c := next(s, tc.maxItems, tc.maxBytes)
			for _, step := range tc.steps {
				blocked(t, c)
				step(t, s)
			}
			got(t, c, tc.want)
		})
	}
	t.Run("close and cancel end the wait", func(t *testing.T) {
		s := newRunning(t, time.Hour)
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { _, err := s.NextBatch(cctx, 3, 0); errc <- err }()
		assertBlocked(t, errc)
		cancel()
		assertReturns(t, errc, context.Canceled)
		errc2 := make(chan error, 1)
		go func() { _, err := s.NextBatch(ctx, 3, 0); errc2 <- err }()
		assertBlocked(t, errc2)
		s.Close()
		assertReturns(t, errc2, ErrClosed)
	})
}
