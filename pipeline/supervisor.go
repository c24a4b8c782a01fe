package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamal-replication/hamal/retry"
)

// State is a channel's lifecycle state, as /status and metrics show it.
type State string

// States.
const (
	StateStarting State = "starting"
	StateSnapshot State = "snapshot" // copying what the source holds (Options.Seed)
	StateRunning  State = "running"
	StatePaused   State = "paused"
	StateRetrying State = "retrying" // a transient error is being retried
	StateError    State = "error"    // stopped by a fatal error; see LastError
	StateStopped  State = "stopped"
)

// states lists every State, for hamal_channel_state.
var states = []State{StateStarting, StateSnapshot, StateRunning, StatePaused, StateRetrying, StateError, StateStopped}

// supervisor owns a channel's lifecycle: the State machine, the last
// error, and pausing. Its methods are safe from any goroutine; sessions
// report state changes through setState and setError, and workers wait in
// waitUnpaused.
type supervisor struct {
	mu        sync.Mutex
	state     State
	lastErr   string
	lastErrAt time.Time
	// resolved counts errors that were retried until the work succeeded;
	// the last of them is kept apart from lastErr, which is only the error
	// the channel is in now.
	resolved       uint64
	lastResolved   string
	lastResolvedAt time.Time
	paused         bool
	// pauseCh holds a channel closed when not paused. Written under mu;
	// read without it, since every worker reads it twice per batch.
	pauseCh  atomic.Pointer[chan struct{}]
	resumeCh chan struct{} // signalled by Resume in state error
}

func newSupervisor() *supervisor {
	s := &supervisor{state: StateStarting, resumeCh: make(chan struct{}, 1)}
	unpaused := make(chan struct{})
	close(unpaused)
	s.pauseCh.Store(&unpaused)
	return s
}

// lifecycle is the supervisor's state as the observer reads it.
type lifecycle struct {
	state          State
	lastErr        string
	lastErrAt      time.Time
	resolved       uint64
	lastResolved   string
	lastResolvedAt time.Time
	paused         bool
}

func (s *supervisor) snapshot() lifecycle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return lifecycle{state: s.state, lastErr: s.lastErr, lastErrAt: s.lastErrAt, resolved: s.resolved,
		lastResolved: s.lastResolved, lastResolvedAt: s.lastResolvedAt, paused: s.paused}
}

// Run replicates until ctx is done, then drains and persists. It returns nil
// after a clean stop, or the fatal error when Options.ExitOnError is set.
//
// Each session runs from the checkpoint until shutdown or a fatal error. A
// transient error opening the source or the sink is retried with backoff
// (state retrying); a fatal one stops in state error until Resume, or
// returns with ExitOnError.
func (c *Channel) Run(ctx context.Context) error {
	var backoff retry.Backoff
	for {
		err := c.runSession(ctx)
		if ctx.Err() != nil {
			c.life.setState(StateStopped)
			c.log.Info("channel stopped", "checkpoint", c.Status().CheckpointPosition)
			return nil
		}
		if err == nil {
			continue
		}
		if retry.IsTransient(err) {
			// The source or the sink could not be opened (an outage at
			// start, e.g. after a restart): retry, as a running channel
			// does, rather than wait for an operator.
			c.obs.countError("transient")
			c.life.setError(StateRetrying, err)
			if backoff.Attempts()%10 == 0 {
				c.log.Warn("cannot open the channel; retrying", "attempt", backoff.Attempts()+1, "err", err)
			}
			if backoff.Sleep(ctx) != nil {
				c.life.setState(StateStopped)
				return nil
			}
			continue
		}
		backoff.Reset()
		c.obs.countError("fatal")
		c.life.setError(StateError, err)
		c.log.Error("channel stopped in state error; fix the cause, then POST /resume or restart", "err", err)
		if c.opts.ExitOnError {
			return err
		}
		select {
		case <-ctx.Done():
			c.life.setState(StateStopped)
			return nil
		case <-c.life.resumeCh:
			c.log.Info("resuming after error from the checkpoint")
			c.life.setState(StateStarting)
		}
	}
}

func (s *supervisor) setState(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused && st == StateRunning {
		st = StatePaused
	}
	s.state = st
}

// recovered sets state running after the work that failed succeeded on a
// retry (a deadlock retried, the source or sink reopened, a resume after
// an error): the error the channel was in becomes a resolved one,
// counted, and is no longer its last error. It reports whether there was
// one.
func (s *supervisor) recovered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := StateRunning
	if s.paused {
		st = StatePaused
	}
	s.state = st
	if s.lastErr == "" {
		return false
	}
	s.resolved++
	s.lastResolved, s.lastResolvedAt = s.lastErr, s.lastErrAt
	s.lastErr, s.lastErrAt = "", time.Time{}
	return true
}

func (s *supervisor) setError(st State, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = st
	s.lastErr = err.Error()
	s.lastErrAt = time.Now()
}

func (s *supervisor) pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		return
	}
	s.paused = true
	ch := make(chan struct{})
	s.pauseCh.Store(&ch)
	if s.state == StateRunning {
		s.state = StatePaused
	}
}

func (s *supervisor) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		s.paused = false
		close(*s.pauseCh.Load())
		if s.state == StatePaused {
			s.state = StateRunning
		}
	}
	if s.state == StateError {
		select {
		case s.resumeCh <- struct{}{}:
		default:
		}
	}
}

// waitUnpaused returns true once the channel is not paused, false when ctx
// is done first.
func (s *supervisor) waitUnpaused(ctx context.Context) bool {
	select {
	case <-*s.pauseCh.Load():
		return true
	case <-ctx.Done():
		return false
	}
}
