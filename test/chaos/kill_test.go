package chaos

import (
	"testing"
	"time"
)

// TestKill9 kills with SIGKILL, while the workload runs: the source server
// (restarted on the same data, binlog intact), the target server, and hamal
// in the middle of a batch (restarted, as a supervisor would). Hamal is not
// touched for the server crashes; each fault must end with a probe row on
// the target, and at the end every table must equal the source.
func TestKill9(t *testing.T) {
	gate(t, true)
	e := newEnv(t, envOptions{})
	load := e.startLoad(t, LoadOptions{Writers: 2})
	rep := &Report{Scenario: "kill-9"}
	down := pick(2*time.Second, 15*time.Second)
	pid := e.hamal.Pid()

	if err := load.WaitCommitted(200, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The source server: hamal's stream breaks, it reconnects at its
	// checkpoint once the server is back.
	if err := e.src.Kill(); err != nil {
		t.Fatal(err)
	}
	rep.Faults++
	e.hold(t, down)
	if err := e.src.Restart(); err != nil {
		t.Fatalf("restart source: %v", err)
	}
	e.recover(t, rep, e.src, "kill -9 source server", pick(2*time.Minute, 5*time.Minute))

	if err := load.WaitCommitted(200, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The target server: batches fail, the lease is lost; hamal retries.
	if err := e.dst.Kill(); err != nil {
		t.Fatal(err)
	}
	rep.Faults++
	e.hold(t, down)
	if err := e.dst.Restart(); err != nil {
		t.Fatalf("restart target: %v", err)
	}
	e.recover(t, rep, e.src, "kill -9 target server", pick(2*time.Minute, 5*time.Minute))
	if e.hamal.Pid() != pid || e.starts != 1 {
		t.Errorf("hamal was restarted during server crashes: recovery must not need an operator")
	}

	// Hamal itself, in the middle of a batch: 30 ms of latency on the
	// target link stretches each batch over several round trips, and the
	// kill waits until transactions are in flight while applied_txns moves.
	heal, err := e.dstLink.Latency(30)
	if err != nil {
		t.Fatal(err)
	}
	kills := pick(1, 3)
	for i := 0; i < kills; i++ {
		if err := load.WaitCommitted(100, time.Minute); err != nil {
			t.Fatal(err)
		}
		waitMidBatch(t, e)
		e.hamal.Kill()
		rep.Faults++
		start := time.Now()
		e.startHamal(t)
		rep.Note("kill -9 hamal #%d: restarted and running again in %s", i+1, time.Since(start).Round(10*time.Millisecond))
		e.recover(t, rep, e.src, "kill -9 hamal mid-batch", pick(2*time.Minute, 5*time.Minute))
	}
	heal()
	e.finish(t, rep, load, e.src)
}

// waitMidBatch waits until hamal has transactions in flight and is
// applying (applied_txns moved since the last look).
func waitMidBatch(t *testing.T, e *env) {
	t.Helper()
	var lastApplied uint64
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		st, err := e.hamal.Status()
		if err == nil && st.InFlight > 0 && lastApplied != 0 && st.AppliedTxns > lastApplied {
			return
		}
		if err == nil {
			lastApplied = st.AppliedTxns
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("hamal never had transactions in flight while applying")
}
