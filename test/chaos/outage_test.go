package chaos

import (
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
)

// TestRestartDuringTargetOutage: hamal is restarted (a crash and a
// supervisor restart, or a deploy) while its target is unreachable. Once
// the target is back, the channel must replicate again without an operator,
// as it does when the outage begins while it runs.
func TestRestartDuringTargetOutage(t *testing.T) {
	gate(t, true)
	e := newEnv(t, envOptions{})
	load := e.startLoad(t, LoadOptions{Writers: 1})
	rep := &Report{Scenario: "restart-during-target-outage"}
	if err := load.WaitCommitted(50, time.Minute); err != nil {
		t.Fatal(err)
	}
	heal := e.dstLink.Cut()
	e.hamal.Kill()
	h, err := StartHamal(hamalBin, e.cfgPath, e.cfg.AdminAddr)
	if err != nil {
		t.Fatal(err)
	}
	e.hamal = h
	t.Cleanup(func() {
		if !h.Exited() {
			h.Kill()
		}
	})
	e.hold(t, 5*time.Second)
	heal()
	e.waitState(t, time.Minute, pipeline.StateRunning)
	e.measureRecovery(t, rep, e.src, "restart during target outage", time.Minute)
	e.finish(t, rep, load, e.src)
}
