package tablecopy

import (
	"context"
	"sync"
	"time"
)

// Rate measures a counter's rate over the last ten seconds (rows per
// second for progress and ETA). Sample is called by Run once a second;
// PerSecond may be called from any goroutine.
type Rate struct {
	mu      sync.Mutex
	samples []rateSample
}

type rateSample struct {
	at time.Time
	n  int64
}

// rateWindow is how many one-second samples the rate spans.
const rateWindow = 10

// Run samples count once a second until ctx ends.
func (r *Rate) Run(ctx context.Context, count func() int64) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.Sample(time.Now(), count())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Sample records the counter's value n at time at.
func (r *Rate) Sample(at time.Time, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, rateSample{at, n})
	if len(r.samples) > rateWindow+1 {
		r.samples = r.samples[1:]
	}
}

// PerSecond is the rate over the samples held (0 with fewer than two).
func (r *Rate) PerSecond() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) < 2 {
		return 0
	}
	a, b := r.samples[0], r.samples[len(r.samples)-1]
	dt := b.at.Sub(a.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(b.n-a.n) / dt
}

// ETA is how long the rest of a copy of total rows takes at rate, 0 when
// unknown (no rate yet) or nothing is left.
func ETA(copied, total int64, rate float64) time.Duration {
	if rate <= 0 || total <= copied {
		return 0
	}
	return time.Duration(float64(total-copied) / rate * float64(time.Second))
}
