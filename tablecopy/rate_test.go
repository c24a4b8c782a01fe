package tablecopy

import (
	"testing"
	"time"
)

func TestRateAndETA(t *testing.T) {
	var r Rate
	if r.PerSecond() != 0 {
		t.Fatal("rate without samples")
	}
	t0 := time.Unix(1000, 0)
	for i := 0; i <= 15; i++ { // 15 s at 100 rows/s, then a window of the last 10
		r.Sample(t0.Add(time.Duration(i)*time.Second), int64(i*100))
	}
	if got := r.PerSecond(); got != 100 {
		t.Fatalf("rate %v, want 100", got)
	}
	cases := []struct {
		name          string
		copied, total int64
		rate          float64
		want          time.Duration
	}{
		{"half left", 500, 1000, 100, 5 * time.Second},
		{"done", 1000, 1000, 100, 0},
		{"estimate below copied", 1200, 1000, 100, 0},
		{"no rate yet", 0, 1000, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ETA(c.copied, c.total, c.rate); got != c.want {
				t.Errorf("ETA(%d, %d, %v) = %s, want %s", c.copied, c.total, c.rate, got, c.want)
			}
		})
	}
}
