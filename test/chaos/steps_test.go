package chaos

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/test/harness"
)

// Steps shared by the scenarios, the short run and the soak. Each injects
// one fault, ends it, and measures recovery with a probe row.

// netFault is one kind of network fault on a link.
type netFault struct {
	name string
	// broken: the fault must make hamal see an error (and retry).
	broken bool
	inject func(l *Link) (Heal, error)
}

var (
	faultLatency   = netFault{"latency 30ms", false, func(l *Link) (Heal, error) { return l.Latency(30) }}
	faultCut       = netFault{"cut", true, func(l *Link) (Heal, error) { return l.Cut(), nil }}
	faultResetPeer = netFault{"reset_peer", true, (*Link).ResetPeer}
	faultBandwidth = netFault{"bandwidth 64KB/s", false, func(l *Link) (Heal, error) { return l.Bandwidth(64) }}
)

// injectNet holds fault f on link for hold, heals it and waits for
// recovery. It fails the test when a breaking fault never reached hamal.
func (e *env) injectNet(t *testing.T, rep *Report, link *Link, f netFault, hold time.Duration) {
	t.Helper()
	name := link.Name + " " + f.name
	before := e.metric(t, "hamal_errors_total", `class="transient"`)
	heal, err := f.inject(link)
	if err != nil {
		t.Fatal(err)
	}
	e.hold(t, hold)
	heal()
	e.measureRecovery(t, rep, e.src, name, pick(2*time.Minute, 5*time.Minute))
	after := e.metric(t, "hamal_errors_total", `class="transient"`)
	if f.broken && after == before {
		t.Errorf("%s: hamal saw no transient error, so the fault did not reach it", name)
	}
	rep.Note("%s held %s: transient errors seen by hamal %.0f", name, hold, after-before)
}

// killServer kills a server with SIGKILL, keeps it down for down, restarts
// it on the same data and waits for recovery. Hamal is not touched.
func (e *env) killServer(t *testing.T, rep *Report, s *harness.Server, name string, down time.Duration) {
	t.Helper()
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	rep.Faults++
	e.hold(t, down)
	if err := s.Restart(); err != nil {
		t.Fatalf("restart %s: %v", name, err)
	}
	e.measureRecovery(t, rep, e.src, "kill -9 "+name, pick(2*time.Minute, 5*time.Minute))
}

// killHamalMidBatch SIGKILLs hamal while it applies and restarts it, as
// a supervisor would. 30 ms of latency on the target link stretches each
// batch over several round trips, and the kill waits until transactions are
// in flight while applied_txns moves.
func (e *env) killHamalMidBatch(t *testing.T, rep *Report) {
	t.Helper()
	heal, err := e.dstLink.Latency(30)
	if err != nil {
		t.Fatal(err)
	}
	e.dstLink.Faults.Add(-1) // the latency is a means, not a fault of its own
	defer heal()             // on failure
	var lastApplied uint64
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := e.hamal.Status()
		if err == nil && st.InFlight > 0 && lastApplied != 0 && st.AppliedTxns > lastApplied {
			break
		}
		if err == nil {
			lastApplied = st.AppliedTxns
		}
		if time.Now().After(deadline) {
			t.Fatal("hamal never had transactions in flight while applying")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.hamal.Kill()
	heal()
	rep.Faults++
	start := time.Now()
	e.startHamal(t)
	rep.Note("kill -9 hamal: restarted and running again in %s", time.Since(start).Round(10*time.Millisecond))
	e.measureRecovery(t, rep, e.src, "kill -9 hamal mid-batch", pick(2*time.Minute, 5*time.Minute))
}

// TestChaosShort is the short run inside make test: one channel under a
// steady workload takes a source cut, resets on the target link, a target
// server crash, a kill -9 of hamal mid-batch and (where a scratch ext4
// filesystem can be mounted) a failing checkpoint directory; the target
// must end equal to the source. The full scenarios run with make chaos.
func TestChaosShort(t *testing.T) {
	gate(t, true)
	if level() != "" {
		t.Skip("chaos: the full scenarios cover this with HAMAL_CHAOS set")
	}
	var o envOptions
	mnt := mountScratchExt4(t)
	if mnt != "" {
		o.checkpointDir = filepath.Join(mnt, "state")
	}
	e := newEnv(t, o)
	load := e.startLoad(t, LoadOptions{Writers: 2})
	rep := &Report{Scenario: "short"}
	if err := load.WaitCommitted(100, time.Minute); err != nil {
		t.Fatal(err)
	}
	e.injectNet(t, rep, e.srcLink, faultCut, 3*time.Second)
	e.injectNet(t, rep, e.dstLink, faultResetPeer, 2*time.Second)
	e.killServer(t, rep, e.dst, "target server", time.Second)
	if err := load.WaitCommitted(50, time.Minute); err != nil {
		t.Fatal(err)
	}
	e.killHamalMidBatch(t, rep)
	if mnt != "" {
		e.checkpointFails(t, rep, mnt)
	} else {
		rep.Note("failing checkpoint directory not injected: no scratch ext4 filesystem here")
	}
	e.finish(t, rep, load, e.src)
}
