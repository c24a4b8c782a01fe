package chaos

import (
	"testing"
	"time"
)

// TestNetworkFaults injects, on the source link and then on the target
// link: latency of 30 ms each way, a full cut (connections dropped, new
// ones refused), reset_peer (every connection reset as soon as data flows)
// and a bandwidth cap, while the workload runs. After each fault a probe row
// must reach the target without anyone touching hamal, and at the end every
// table on the target must equal the source.
func TestNetworkFaults(t *testing.T) {
	gate(t, true)
	e := newEnv(t, envOptions{})
	load := e.startLoad(t, LoadOptions{Writers: 2})
	rep := &Report{Scenario: "network"}
	pid := e.hamal.Pid()

	if err := load.WaitCommitted(200, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, link := range []*Link{e.srcLink, e.dstLink} {
		faults := []struct {
			name string
			hold time.Duration
			// broken: the fault must make hamal see an error (and retry).
			broken bool
			inject func() (Heal, error)
		}{
			{"latency 30ms", pick(3*time.Second, 30*time.Second), false, func() (Heal, error) { return link.Latency(30) }},
			{"cut", pick(5*time.Second, 30*time.Second), true, func() (Heal, error) { return link.Cut(), nil }},
			{"reset_peer", pick(2*time.Second, 10*time.Second), true, link.ResetPeer},
			{"bandwidth 64KB/s", pick(3*time.Second, 30*time.Second), false, func() (Heal, error) { return link.Bandwidth(64) }},
		}
		for _, f := range faults {
			name := link.Name + " " + f.name
			errsBefore := e.metric(t, "hamal_errors_total", `class="transient"`)
			heal, err := f.inject()
			if err != nil {
				t.Fatal(err)
			}
			e.hold(t, f.hold)
			heal()
			e.recover(t, rep, e.src, name, pick(2*time.Minute, 5*time.Minute))
			errsAfter := e.metric(t, "hamal_errors_total", `class="transient"`)
			if f.broken && errsAfter == errsBefore {
				t.Errorf("%s: hamal saw no transient error, so the fault did not reach it", name)
			}
			rep.Note("%s: transient errors seen by hamal %.0f", name, errsAfter-errsBefore)
		}
	}
	if e.hamal.Pid() != pid || e.starts != 1 {
		t.Errorf("hamal was restarted (pid %d → %d): recovery must not need an operator", pid, e.hamal.Pid())
	}
	e.finish(t, rep, load, e.src)
}
