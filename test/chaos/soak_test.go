package chaos

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// TestSoak runs for HAMAL_SOAK (a duration, e.g. 30m; make soak): a steady
// workload with a random fault every minute — a network fault on either
// link, or a kill -9 of the source or target server. Hamal itself is never
// restarted, so its RSS and goroutine count are one process's series,
// sampled every 10 s and printed as first/last/max. At the end the target
// must equal the source.
func TestSoak(t *testing.T) {
	d := os.Getenv("HAMAL_SOAK")
	if d == "" {
		t.Skip("chaos: the soak runs with make soak (HAMAL_SOAK=<duration>)")
	}
	duration, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("HAMAL_SOAK=%q: %v (want a duration such as 30m)", d, err)
	}
	e := newEnv(t, envOptions{})
	load := e.startLoad(t, LoadOptions{Writers: 2, Pause: 10 * time.Millisecond})
	rep := &Report{Scenario: "soak " + duration.String()}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var rss, goroutines series
	sample := func() {
		if mem, err := e.hamal.Memory(); err == nil {
			rss.add(float64(mem.RSS) / (1 << 20))
		}
		if m, err := e.hamal.Metrics(); err == nil {
			goroutines.add(m.Sum("go_goroutines"))
		}
	}
	faults := []func(){
		func() { e.injectNet(t, rep, e.srcLink, faultLatency, 10*time.Second) },
		func() { e.injectNet(t, rep, e.srcLink, faultCut, 10*time.Second) },
		func() { e.injectNet(t, rep, e.srcLink, faultResetPeer, 3*time.Second) },
		func() { e.injectNet(t, rep, e.srcLink, faultBandwidth, 10*time.Second) },
		func() { e.injectNet(t, rep, e.dstLink, faultLatency, 10*time.Second) },
		func() { e.injectNet(t, rep, e.dstLink, faultCut, 10*time.Second) },
		func() { e.injectNet(t, rep, e.dstLink, faultResetPeer, 3*time.Second) },
		func() { e.injectNet(t, rep, e.dstLink, faultBandwidth, 10*time.Second) },
		func() { e.killServer(t, rep, e.src, "source server", 3*time.Second) },
		func() { e.killServer(t, rep, e.dst, "target server", 3*time.Second) },
	}
	sample()
	end := time.Now().Add(duration)
	nextFault := time.Now().Add(time.Minute)
	for time.Now().Before(end) {
		e.hold(t, 10*time.Second)
		sample()
		if time.Now().After(nextFault) && time.Now().Before(end) {
			faults[rng.IntN(len(faults))]()
			sample()
			nextFault = nextFault.Add(time.Minute)
		}
		if err := load.Err(); err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	rep.Note("hamal rss MiB: first %.1f last %.1f max %.1f (%d samples)", rss.first, rss.last, rss.max, rss.n)
	rep.Note("hamal goroutines: first %.0f last %.0f max %.0f", goroutines.first, goroutines.last, goroutines.max)
	e.finish(t, rep, load, e.src)
}

// series keeps first, last and max of a sampled value.
type series struct {
	first, last, max float64
	n                int
}

func (s *series) add(v float64) {
	if s.n == 0 {
		s.first = v
	}
	s.last, s.max = v, max(s.max, v)
	s.n++
}
