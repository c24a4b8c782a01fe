package e2e

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

// startPair starts a source and a target MariaDB with the workload schema
// on both.
func startPair(t *testing.T) (src, dst *harness.Server) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); src = harness.MariaDB(t, harness.Options{ServerID: 1}) }()
	go func() { defer wg.Done(); dst = harness.MariaDB(t, harness.Options{ServerID: 2}) }()
	wg.Wait()
	if src == nil || dst == nil {
		t.FailNow()
	}
	src.MustExec(t, workload.Schema...)
	dst.MustExec(t, workload.Schema...)
	return src, dst
}

// TestMixedWorkloadSurvivesKill9 writes 8k multi-statement transactions
// (20k with HAMAL_LONG=1) over three tables (composite PK, unique secondary key, every column type)
// with PK changes and unique-value moves, SIGKILLs hamal at random points
// and restarts it, and then requires every table on the target to equal
// the source.
func TestMixedWorkloadSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src, dst := startPair(t)
	ch := newChannel(t, src, dst, channelOpts{workers: 8})
	p := ch.startRunning(t)

	const workers = 4
	txnsPerWorker := 2000
	if long() {
		txnsPerWorker = 5000
	}
	var done atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	var finished atomic.Int32
	for w := 1; w <= workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			errc <- workload.Write(ctx, src.Addr, w, txnsPerWorker, 42, &done)
		}()
	}

	// SIGKILL hamal at three random points of the workload and restart it.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	total := int64(workers * txnsPerWorker)
	kills := 0
	for i, frac := range []float64{0.15, 0.45, 0.75} {
		at := int64((frac + rng.Float64()*0.1) * float64(total))
		for done.Load() < at && finished.Load() < workers {
			time.Sleep(20 * time.Millisecond)
		}
		// Sometimes kill right after a restart, before the first checkpoint.
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		p.kill(t)
		kills++
		t.Logf("kill %d: SIGKILL at %d/%d transactions", i+1, done.Load(), total)
		p = ch.start(t)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	t.Logf("workload done: %d transactions, %d kills", done.Load(), kills)
	waitTablesEqual(t, src, dst, workload.Tables, 3*time.Minute)
	st, err := ch.status()
	if err != nil {
		t.Fatal(err)
	}
	if st.State != pipeline.StateRunning || st.InFlight != 0 || st.LagSeconds > 5 {
		t.Errorf("final status %+v, want running with nothing in flight", st)
	}
	t.Logf("final status: state=%s applied=%d txns/%d rows since last start, checkpoint=%s", st.State, st.AppliedTxns, st.AppliedRows, st.CheckpointPosition)

	// A clean stop (SIGTERM) exits 0 and persists the final position.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}
	pos, ok := ch.checkpointPos(t)
	gtid, _ := src.GTIDPos()
	if !ok || !strings.Contains(pos, gtid) {
		t.Errorf("checkpoint after SIGTERM = %q, want it to hold source gtid %q", pos, gtid)
	}
}
