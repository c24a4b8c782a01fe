package retry

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestTransient(t *testing.T) {
	base := errors.New("connection reset")
	err := fmt.Errorf("apply batch: %w", Transient(base))
	if !IsTransient(err) || !errors.Is(err, base) || err.Error() != "apply batch: connection reset" {
		t.Fatalf("wrapped transient: %v", err)
	}
	if IsTransient(base) || Transient(nil) != nil || IsTransient(nil) {
		t.Fatal("plain errors and nil are not transient")
	}
	if twice := Transient(Transient(base)); twice.Error() != base.Error() {
		t.Fatalf("double mark changed the message: %q", twice)
	}
}

func TestBackoffGrowsWithinBounds(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond}
	var prevMax time.Duration
	for i := 0; i < 12; i++ {
		d := b.Next()
		ceiling := min(b.Min<<i, b.Max)
		if d > ceiling || d < ceiling*3/4 {
			t.Fatalf("attempt %d: delay %s outside [%s, %s]", i, d, ceiling*3/4, ceiling)
		}
		prevMax = max(prevMax, d)
	}
	if b.Attempts() != 12 {
		t.Fatalf("attempts = %d", b.Attempts())
	}
	b.Reset()
	if d := b.Next(); d > b.Min {
		t.Fatalf("after reset: %s", d)
	}
}
