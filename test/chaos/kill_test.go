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
	gate(t, false)
	e := newEnv(t, envOptions{})
	load := e.startLoad(t, LoadOptions{Writers: 2})
	rep := &Report{Scenario: "kill-9"}
	down := pick(2*time.Second, 15*time.Second)
	pid := e.hamal.Pid()
	for _, s := range []struct {
		name string
		kill func()
	}{
		{"source server", func() { e.killServer(t, rep, e.src, "source server", down) }},
		{"target server", func() { e.killServer(t, rep, e.dst, "target server", down) }},
	} {
		if err := load.WaitCommitted(200, time.Minute); err != nil {
			t.Fatal(err)
		}
		s.kill()
	}
	if e.hamal.Pid() != pid || e.starts != 1 {
		t.Errorf("hamal was restarted during server crashes: recovery must not need an operator")
	}
	for range pick(1, 3) {
		if err := load.WaitCommitted(100, time.Minute); err != nil {
			t.Fatal(err)
		}
		e.killHamalMidBatch(t, rep)
	}
	e.finish(t, rep, load, e.src)
}
