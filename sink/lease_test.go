package sink

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestKeepLease: a failed renewal is retried, a renewal that finds the
// lease gone calls lost once and stops; closing stop ends it without lost.
func TestKeepLease(t *testing.T) {
	calls := 0
	lost := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		KeepLease(make(chan struct{}), 5*time.Millisecond, func(ctx context.Context) (bool, error) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("renew without a deadline")
			}
			calls++
			switch calls {
			case 1:
				return true, nil
			case 2:
				return false, errors.New("connection refused") // retried
			}
			return false, nil // gone
		}, func() { lost++ })
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("KeepLease did not return after the lease was gone")
	}
	if calls != 3 || lost != 1 {
		t.Errorf("renew called %d times, lost %d; want 3 and 1", calls, lost)
	}

	stop := make(chan struct{})
	close(stop)
	KeepLease(stop, time.Hour, func(context.Context) (bool, error) { t.Error("renewed after stop"); return true, nil },
		func() { t.Error("lost after stop") })
}
