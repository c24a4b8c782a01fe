package sink

import (
	"context"
	"time"
)

// KeepLease renews a lease held with a time to live: every ttl/5 it
// calls renew with a deadline of ttl/2, until stop is closed or renew
// reports the lease gone (false and no error), when it calls lost and
// returns. A failed renewal (an error) is retried on the next tick: the
// in-memory state is only a hint, every unit proves the lease itself.
// Run it on a goroutine of its own; it returns when either happens.
func KeepLease(stop <-chan struct{}, ttl time.Duration, renew func(context.Context) (bool, error), lost func()) {
	t := time.NewTicker(ttl / 5)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ttl/2)
		held, err := renew(ctx)
		cancel()
		if err == nil && !held {
			lost()
			return
		}
	}
}
