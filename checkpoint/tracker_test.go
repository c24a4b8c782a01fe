package checkpoint

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// baseTime is the CommitTime of seq 0 in tracker tests; seq n commits n
// seconds later.
var baseTime = time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)

func testMark(seq uint64) Mark {
	return Mark{
		Seq:        seq,
		Pos:        event.Position(fmt.Sprintf("pos-%d", seq)),
		CommitTime: baseTime.Add(time.Duration(seq) * time.Second),
	}
}

// TestTrackerGolden replays testdata/watermark.txt. Each line is
//
//	<command> [args...] => <expected state>
//
// where command is one of
//
//	tracker <start>     a new Tracker
//	issue <seq>...      Issue each seq in turn (Mark from testMark)
//	done <seq>...       Done each seq in turn
//
// and the state after the command is "err=<error> " (when a call failed,
// naming the sentinel) followed by "wm=<seq|none> pending=<n> oldest=<seq|none>
// issued=<seq|none>", where oldest is the seq whose CommitTime Pending
// returns. Blank lines and lines starting with # are kept as they are. Run
// with -update to rewrite the expectations.
func TestTrackerGolden(t *testing.T) {
	const path = "testdata/watermark.txt"
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var (
		tracker *Tracker
		out     strings.Builder
		failed  bool
	)
	scanner := bufio.NewScanner(f)
	for lineNo := 1; scanner.Scan(); lineNo++ {
		line := scanner.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			out.WriteString(line + "\n")
			continue
		}
		command, want, _ := strings.Cut(trimmed, "=>")
		command, want = strings.TrimSpace(command), strings.TrimSpace(want)
		fields := strings.Fields(command)
		seqs := make([]uint64, 0, len(fields)-1)
		for _, field := range fields[1:] {
			seq, err := strconv.ParseUint(field, 10, 64)
			if err != nil {
				t.Fatalf("%s:%d: bad seq %q", path, lineNo, field)
			}
			seqs = append(seqs, seq)
		}

		var errs []string
		switch fields[0] {
		case "tracker":
			if len(seqs) != 1 {
				t.Fatalf("%s:%d: tracker takes one start seq", path, lineNo)
			}
			tracker = NewTracker(seqs[0])
		case "issue":
			for _, seq := range seqs {
				if err := tracker.Issue(testMark(seq)); err != nil {
					errs = append(errs, sentinelName(err))
				}
			}
		case "done":
			for _, seq := range seqs {
				if err := tracker.Done(seq); err != nil {
					errs = append(errs, sentinelName(err))
				}
			}
		default:
			t.Fatalf("%s:%d: unknown command %q", path, lineNo, fields[0])
		}

		got := describeTracker(tracker)
		if len(errs) > 0 {
			got = "err=" + strings.Join(errs, ",") + " " + got
		}
		if got != want && !*update {
			t.Errorf("%s:%d: %s\n got: %s\nwant: %s", path, lineNo, command, got, want)
			failed = true
		}
		out.WriteString(command + " => " + got + "\n")
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if *update && !failed {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sentinelName(err error) string {
	for _, sentinel := range []struct {
		err  error
		name string
	}{
		{ErrNotDense, "not-dense"},
		{ErrUnknownSeq, "unknown"},
		{ErrAlreadyDone, "already-done"},
	} {
		if errors.Is(err, sentinel.err) {
			return sentinel.name
		}
	}
	return "other(" + err.Error() + ")"
}

// describeTracker renders the observable state of tracker on one line, and
// checks that every Mark it returns is the one issued for its seq.
func describeTracker(tracker *Tracker) string {
	seqOf := func(m Mark, ok bool) string {
		if !ok {
			return "none"
		}
		if want := testMark(m.Seq); string(m.Pos) != string(want.Pos) || !m.CommitTime.Equal(want.CommitTime) {
			return fmt.Sprintf("corrupt(%d:%s)", m.Seq, m.Pos)
		}
		return strconv.FormatUint(m.Seq, 10)
	}
	n, oldest, ok := tracker.Pending()
	oldestSeq := "none"
	if ok {
		oldestSeq = strconv.FormatInt(int64(oldest.Sub(baseTime)/time.Second), 10)
	}
	return fmt.Sprintf("wm=%s pending=%d oldest=%s issued=%s",
		seqOf(tracker.Watermark()), n, oldestSeq, seqOf(tracker.Issued()))
}

func TestTrackerPending(t *testing.T) {
	tests := []struct {
		name       string
		issue      int
		done       []uint64
		wantN      int
		wantOldest uint64 // seq whose CommitTime is the oldest pending
		wantOK     bool
	}{
		{name: "nothing issued", issue: 0, wantOK: false},
		{name: "none done", issue: 3, wantN: 3, wantOldest: 1, wantOK: true},
		{name: "head done", issue: 3, done: []uint64{1}, wantN: 2, wantOldest: 2, wantOK: true},
		{name: "tail done", issue: 3, done: []uint64{3, 2}, wantN: 1, wantOldest: 1, wantOK: true},
		{name: "gap", issue: 5, done: []uint64{1, 2, 4}, wantN: 2, wantOldest: 3, wantOK: true},
		{name: "all done", issue: 3, done: []uint64{2, 3, 1}, wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tracker := NewTracker(0)
			for seq := uint64(1); seq <= uint64(tc.issue); seq++ {
				if err := tracker.Issue(testMark(seq)); err != nil {
					t.Fatal(err)
				}
			}
			for _, seq := range tc.done {
				if err := tracker.Done(seq); err != nil {
					t.Fatal(err)
				}
			}
			n, oldest, ok := tracker.Pending()
			if ok != tc.wantOK || n != tc.wantN {
				t.Fatalf("Pending() = %d, %v, %v; want %d, ok=%v", n, oldest, ok, tc.wantN, tc.wantOK)
			}
			if ok && !oldest.Equal(testMark(tc.wantOldest).CommitTime) {
				t.Errorf("oldest = %v, want CommitTime of seq %d (%v)", oldest, tc.wantOldest, testMark(tc.wantOldest).CommitTime)
			}
		})
	}
}

func TestTrackerDrained(t *testing.T) {
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	// Each step issues (positive) or completes (negative) one seq, then
	// takes a new Drained channel; want lists, after each step, whether
	// every channel taken so far is closed.
	tests := []struct {
		name  string
		steps []int
		want  [][]bool
	}{
		{name: "nothing issued", steps: nil, want: nil},
		{name: "one issued then done", steps: []int{1, -1},
			want: [][]bool{{false}, {true, true}}},
		{name: "out of order: closed by the last pending Done", steps: []int{1, 2, 3, -3, -2, -1},
			want: [][]bool{{false}, {false, false}, {false, false, false}, {false, false, false, false},
				{false, false, false, false, false}, {true, true, true, true, true, true}}},
		{name: "issued after the call is waited for", steps: []int{1, 2, -1, -2},
			want: [][]bool{{false}, {false, false}, {false, false, false}, {true, true, true, true}}},
		{name: "drained, then busy again", steps: []int{1, -1, 2, -2},
			want: [][]bool{{false}, {true, true}, {true, true, false}, {true, true, true, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tracker := NewTracker(0)
			if !closed(tracker.Drained()) {
				t.Fatal("Drained() of a new tracker is not closed")
			}
			var chans []<-chan struct{}
			for i, step := range tc.steps {
				var err error
				if step > 0 {
					err = tracker.Issue(testMark(uint64(step)))
				} else {
					err = tracker.Done(uint64(-step))
				}
				if err != nil {
					t.Fatal(err)
				}
				chans = append(chans, tracker.Drained())
				for j, ch := range chans {
					if got := closed(ch); got != tc.want[i][j] {
						t.Fatalf("after step %d (%d): channel %d closed = %v, want %v", i+1, step, j+1, got, tc.want[i][j])
					}
				}
			}
		})
	}
}

// TestTrackerRingBounded checks that the ring grows with the in-flight count
// and shrinks back when it drains.
func TestTrackerRingBounded(t *testing.T) {
	tracker := NewTracker(0)
	const inFlight = 1000
	for seq := uint64(1); seq <= inFlight; seq++ {
		if err := tracker.Issue(testMark(seq)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(tracker.ring); got < inFlight || got > 2*inFlight {
		t.Fatalf("ring size %d with %d in flight", got, inFlight)
	}
	// Complete from the end, so everything pops at once when seq 1 is done.
	for seq := uint64(inFlight); seq >= 1; seq-- {
		if err := tracker.Done(seq); err != nil {
			t.Fatal(err)
		}
	}
	// Then a long steady stream with a small window.
	next := uint64(inFlight + 1)
	for range 100_000 {
		if err := tracker.Issue(testMark(next)); err != nil {
			t.Fatal(err)
		}
		if err := tracker.Done(next); err != nil {
			t.Fatal(err)
		}
		next++
	}
	if got := len(tracker.ring); got > 2*minRingSize {
		t.Errorf("ring size %d after draining, want <= %d", got, 2*minRingSize)
	}
	if m, ok := tracker.Watermark(); !ok || m.Seq != next-1 {
		t.Errorf("Watermark() = %d, %v; want %d", m.Seq, ok, next-1)
	}
}

// TestTrackerConcurrent issues seqs from one goroutine while several workers
// complete them in random order. A checker keeps reading the watermark and
// fails if it ever names a seq that is not done, or goes backwards.
func TestTrackerConcurrent(t *testing.T) {
	tests := []struct {
		name    string
		start   uint64
		total   int
		workers int
		window  int // max in-flight seqs per batch handed to workers
	}{
		{name: "small", start: 0, total: 1000, workers: 2, window: 8},
		{name: "wide window", start: 0, total: 20000, workers: 8, window: 512},
		{name: "resumed", start: 1 << 40, total: 5000, workers: 4, window: 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tracker := NewTracker(tc.start)
			last := tc.start + uint64(tc.total)
			done := make([]bool, tc.total+1) // done[seq-start], set before Done is called
			var doneMu sync.Mutex
			isDone := func(seq uint64) bool {
				doneMu.Lock()
				defer doneMu.Unlock()
				return done[seq-tc.start]
			}

			work := make(chan uint64)
			var workers sync.WaitGroup
			errs := make(chan error, tc.workers+1)
			for w := range tc.workers {
				workers.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for seq := range work {
						if rng.IntN(4) == 0 {
							time.Sleep(time.Duration(rng.IntN(50)) * time.Microsecond)
						}
						doneMu.Lock()
						done[seq-tc.start] = true
						doneMu.Unlock()
						if err := tracker.Done(seq); err != nil {
							errs <- err
							return
						}
					}
				})
			}

			stopChecker := make(chan struct{})
			var checker sync.WaitGroup
			checker.Go(func() {
				var previous uint64
				for {
					select {
					case <-stopChecker:
						return
					default:
					}
					m, ok := tracker.Watermark()
					if !ok {
						continue
					}
					if m.Seq < previous {
						errs <- fmt.Errorf("watermark went back from %d to %d", previous, m.Seq)
						return
					}
					previous = m.Seq
					// Every seq up to the watermark must be done. Checking the
					// whole prefix each time is slow, so check a window.
					for seq := m.Seq; seq > tc.start && seq+64 > m.Seq; seq-- {
						if !isDone(seq) {
							errs <- fmt.Errorf("watermark %d passes undone seq %d", m.Seq, seq)
							return
						}
					}
				}
			})

			rng := rand.New(rand.NewPCG(42, uint64(tc.total)))
			batch := make([]uint64, 0, tc.window)
			for seq := tc.start + 1; seq <= last; seq++ {
				if err := tracker.Issue(testMark(seq)); err != nil {
					t.Fatal(err)
				}
				batch = append(batch, seq)
				if len(batch) == cap(batch) || seq == last {
					rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
					for _, s := range batch {
						work <- s
					}
					batch = batch[:0]
				}
			}
			drained := tracker.Drained() // some seqs are still with the workers
			close(work)
			workers.Wait()
			select {
			case <-drained:
			default:
				t.Error("Drained() not closed after every issued seq was done")
			}
			close(stopChecker)
			checker.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}

			m, ok := tracker.Watermark()
			if !ok || m.Seq != last {
				t.Errorf("final Watermark() = %d, %v; want %d", m.Seq, ok, last)
			}
			if string(m.Pos) != string(testMark(last).Pos) {
				t.Errorf("final watermark Pos = %q, want %q", m.Pos, testMark(last).Pos)
			}
			if n, _, ok := tracker.Pending(); ok || n != 0 {
				t.Errorf("Pending() = %d, %v; want 0, false", n, ok)
			}
		})
	}
}
