// Package retry owns the line between transient and fatal errors, and the
// backoff used to retry transient ones.
//
// A component that knows an error is transient (connection lost, deadlock,
// lock wait timeout) wraps it with Transient; callers decide with
// IsTransient (errors.Is against ErrTransient), never by matching strings.
// Everything not marked transient is fatal: the channel stops in state
// "error" and its checkpoint stays where it was.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// ErrTransient marks an error that may succeed when retried.
var ErrTransient = errors.New("transient")

type transientError struct{ err error }

func (e transientError) Error() string   { return e.err.Error() }
func (e transientError) Unwrap() []error { return []error{e.err, ErrTransient} }

// Transient marks err as retryable. It returns nil for nil.
func Transient(err error) error {
	if err == nil || errors.Is(err, ErrTransient) {
		return err
	}
	return transientError{err}
}

// IsTransient reports whether err was marked with Transient.
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }

// Backoff yields exponentially growing delays with jitter, from Min up to Max.
type Backoff struct {
	Min, Max time.Duration
	attempt  int
}

// Next returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi < lo {
		hi = 30 * time.Second
	}
	d := lo << min(b.attempt, 20)
	if d > hi || d <= 0 {
		d = hi
	}
	b.attempt++
	// Up to 25% jitter, so many channels do not retry in lock step.
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// Reset starts the sequence over after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Attempts returns how many delays Next has handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.attempt }

// Sleep waits for the next delay or until ctx is done.
func (b *Backoff) Sleep(ctx context.Context) error {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
