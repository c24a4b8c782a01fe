package checkpoint

import (
	"context"
	"errors"
	"testing"
	"time"
)

// countingClock returns a clock for Persister.now that counts its calls:
// Flush reads it once per save attempt.
func countingClock(calls *int) func() time.Time {
	return func() time.Time {
		*calls++
		return baseTime.Add(time.Duration(*calls) * time.Hour)
	}
}

func TestPersisterFlush(t *testing.T) {
	type step struct {
		issue     uint64   // issue seqs up to this one
		done      []uint64 // then complete these
		wantSaved uint64   // seq of the stored checkpoint after Flush; 0: none
		wantSaves int      // saves so far
	}
	tests := []struct {
		name  string
		start uint64
		steps []step
	}{
		{
			name: "nothing done saves nothing",
			steps: []step{
				{issue: 3, wantSaved: 0, wantSaves: 0},
				{done: []uint64{2, 3}, wantSaved: 0, wantSaves: 0},
			},
		},
		{
			name: "saves the watermark, not the highest done",
			steps: []step{
				{issue: 5, done: []uint64{1, 2, 4, 5}, wantSaved: 2, wantSaves: 1},
				{done: []uint64{3}, wantSaved: 5, wantSaves: 2},
			},
		},
		{
			name: "no save when the watermark did not move",
			steps: []step{
				{issue: 3, done: []uint64{1}, wantSaved: 1, wantSaves: 1},
				{wantSaved: 1, wantSaves: 1},
				{done: []uint64{3}, wantSaved: 1, wantSaves: 1},
				{done: []uint64{2}, wantSaved: 3, wantSaves: 2},
				{wantSaved: 3, wantSaves: 2},
			},
		},
		{
			name:  "resumed tracker",
			start: 40,
			steps: []step{
				{issue: 42, done: []uint64{41}, wantSaved: 41, wantSaves: 1},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := openTestStore(t, t.TempDir())
			tracker := NewTracker(tc.start)
			persister := NewPersister(store, "ch", tracker, time.Hour, nil)
			saves := 0
			persister.now = countingClock(&saves)
			issued := tc.start
			for i, st := range tc.steps {
				for ; issued < st.issue; issued++ {
					if err := tracker.Issue(testMark(issued + 1)); err != nil {
						t.Fatal(err)
					}
				}
				for _, seq := range st.done {
					if err := tracker.Done(seq); err != nil {
						t.Fatal(err)
					}
				}
				if err := persister.Flush(); err != nil {
					t.Fatalf("step %d: Flush: %v", i, err)
				}
				if saves != st.wantSaves || persister.Saves() != uint64(st.wantSaves) {
					t.Errorf("step %d: %d saves (Saves() %d), want %d", i, saves, persister.Saves(), st.wantSaves)
				}
				stored, ok, err := store.Load("ch")
				if err != nil {
					t.Fatal(err)
				}
				last, lastOK := persister.Last()
				if st.wantSaved == 0 {
					if ok || lastOK {
						t.Errorf("step %d: saved %+v (Last %+v), want nothing", i, stored, last)
					}
					continue
				}
				want := testMark(st.wantSaved)
				if !ok || stored.Seq != want.Seq || string(stored.Pos) != string(want.Pos) ||
					!stored.CommitTime.Equal(want.CommitTime) {
					t.Errorf("step %d: stored %+v, want %+v", i, stored, want)
				}
				if !lastOK || !checkpointsEqual(last, stored) {
					t.Errorf("step %d: Last() = %+v, %v; want %+v", i, last, lastOK, stored)
				}
			}
		})
	}
}

// TestPersisterNoRegress gives the Persister a tracker whose watermark is
// behind the last save, as a bug elsewhere might; the store must not move
// back.
func TestPersisterNoRegress(t *testing.T) {
	store := openTestStore(t, t.TempDir())
	ahead := NewTracker(0)
	for seq := uint64(1); seq <= 5; seq++ {
		if err := ahead.Issue(testMark(seq)); err != nil {
			t.Fatal(err)
		}
		if err := ahead.Done(seq); err != nil {
			t.Fatal(err)
		}
	}
	persister := NewPersister(store, "ch", ahead, time.Hour, nil)
	if err := persister.Flush(); err != nil {
		t.Fatal(err)
	}

	behind := NewTracker(0)
	if err := behind.Issue(testMark(1)); err != nil {
		t.Fatal(err)
	}
	if err := behind.Done(1); err != nil {
		t.Fatal(err)
	}
	persister.tracker = behind
	if err := persister.Flush(); err != nil {
		t.Fatal(err)
	}
	stored, ok, err := store.Load("ch")
	if err != nil || !ok || stored.Seq != 5 {
		t.Errorf("stored %+v, %v, %v; want seq 5", stored, ok, err)
	}
	if last, _ := persister.Last(); last.Seq != 5 {
		t.Errorf("Last().Seq = %d, want 5", last.Seq)
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline. It asserts progress, never timing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPersisterRun(t *testing.T) {
	store := openTestStore(t, t.TempDir())
	tracker := NewTracker(0)
	persister := NewPersister(store, "ch", tracker, time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- persister.Run(ctx) }()

	for seq := uint64(1); seq <= 10; seq++ {
		if err := tracker.Issue(testMark(seq)); err != nil {
			t.Fatal(err)
		}
	}
	doneUpTo := uint64(0)
	for _, target := range []uint64{3, 7} {
		for ; doneUpTo < target; doneUpTo++ {
			if err := tracker.Done(doneUpTo + 1); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "interval save", func() bool {
			last, ok := persister.Last()
			return ok && last.Seq == target
		})
		stored, ok, err := store.Load("ch")
		if err != nil || !ok || stored.Seq != target {
			t.Errorf("stored %+v, %v, %v; want seq %d", stored, ok, err, target)
		}
	}

	// Done and stop at once: the final flush must save it.
	for seq := uint64(8); seq <= 10; seq++ {
		if err := tracker.Done(seq); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	stored, ok, err := store.Load("ch")
	if err != nil || !ok || stored.Seq != 10 {
		t.Errorf("stored after stop %+v, %v, %v; want seq 10", stored, ok, err)
	}
}

func TestPersisterSaveError(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, persister *Persister) error
	}{
		{
			name: "Flush",
			run: func(t *testing.T, persister *Persister) error {
				return persister.Flush()
			},
		},
		{
			name: "Run returns at once",
			run: func(t *testing.T, persister *Persister) error {
				// Never cancelled: Run must return by itself.
				return persister.Run(context.Background())
			},
		},
		{
			name: "Run final flush",
			run: func(t *testing.T, persister *Persister) error {
				persister.interval = time.Hour
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return persister.Run(ctx)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			tracker := NewTracker(0)
			persister := NewPersister(store, "ch", tracker, time.Millisecond, nil)
			if err := tracker.Issue(testMark(1)); err != nil {
				t.Fatal(err)
			}
			if err := tracker.Done(1); err != nil {
				t.Fatal(err)
			}
			if err := store.Close(); err != nil {
				t.Fatal(err)
			}
			err = tc.run(t, persister)
			if !errors.Is(err, ErrClosed) {
				t.Errorf("got %v, want an error wrapping ErrClosed", err)
			}
			if last, ok := persister.Last(); ok {
				t.Errorf("Last() = %+v after a failed save", last)
			}
		})
	}
}
