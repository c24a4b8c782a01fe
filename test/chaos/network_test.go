package chaos

import (
	"testing"
	"time"
)

// TestNetworkFaults injects, on the source link and then on the target
// link: latency of 30 ms each way, a full cut (connections dropped, new
// ones refused), reset_peer (every connection reset as soon as data flows)
// and a bandwidth cap of 64 KB/s, while the workload runs. After each fault
// a probe row must reach the target without anyone touching hamal, and at
// the end every table on the target must equal the source.
func TestNetworkFaults(t *testing.T) {
	gate(t, false)
	e := newEnv(t, envOptions{})
	load := e.startLoad(t, LoadOptions{Writers: 2})
	rep := &Report{Scenario: "network"}
	pid := e.hamal.Pid()
	if err := load.WaitCommitted(200, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, link := range []*Link{e.srcLink, e.dstLink} {
		e.injectNet(t, rep, link, faultLatency, pick(3*time.Second, 30*time.Second))
		e.injectNet(t, rep, link, faultCut, pick(5*time.Second, 30*time.Second))
		e.injectNet(t, rep, link, faultResetPeer, pick(2*time.Second, 10*time.Second))
		e.injectNet(t, rep, link, faultBandwidth, pick(3*time.Second, 30*time.Second))
	}
	if e.hamal.Pid() != pid || e.starts != 1 {
		t.Errorf("hamal was restarted (pid %d → %d): recovery must not need an operator", pid, e.hamal.Pid())
	}
	e.finish(t, rep, load, e.src)
}
