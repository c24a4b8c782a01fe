package relay

import (
	"strconv"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
)

// State is the state of the relay's reader, shown in Status.State.
type State int

// Reader states. The zero State is invalid.
const (
	// StateStarting: a reader pair was started and has not opened the
	// source yet.
	StateStarting State = iota + 1
	// StateReading: the source is open and read.
	StateReading
	// StateFull: the relay holds max_bytes; reading waits for the applier.
	StateFull
	// StateSourceRetrying: the source could not be opened or its stream
	// broke; reopening it after the last record read, with backoff.
	StateSourceRetrying
	// StateError: the reader stopped on a fatal error (Status.Reason); the
	// applier is served what the relay holds, then the error.
	StateError
	// StateStopped: the relay was closed.
	StateStopped
)

var stateNames = [...]string{
	StateStarting:       "starting",
	StateReading:        "reading",
	StateFull:           "relay full",
	StateSourceRetrying: "source retrying",
	StateError:          "error",
	StateStopped:        "stopped",
}

// String returns the state as /status and `hamal status` show it.
func (s State) String() string {
	if s <= 0 || int(s) >= len(stateNames) {
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
	return stateNames[s]
}

// Status is the relay's operator view, in /status under "relay": the
// channel's observer reports it through pipeline.RelayLog, which a *Relay
// implements, so the shape is pipeline's (the pipeline does not import the
// relay).
type Status = pipeline.RelayStatus

var _ pipeline.RelayLog = (*Relay)(nil)

// Status returns a snapshot; safe from any goroutine.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Dir: r.opts.Dir, State: r.state.String(), Reason: r.reason,
		ReadSeq: r.read.seq, ReadPosition: r.read.pos.String(), ReadCommitTime: r.read.commit,
		AppliedSeq: r.applied.seq, AppliedPosition: r.applied.pos.String(), AppliedCommitTime: r.applied.commit,
		Bytes: r.bytes, MaxBytes: r.opts.MaxBytes, Segments: len(r.segs), Full: r.full}
	if r.read.seq > r.applied.seq {
		st.Txns = r.read.seq - r.applied.seq
		if !r.read.commit.IsZero() && !r.applied.commit.IsZero() {
			st.ReadAheadSeconds = max(r.read.commit.Sub(r.applied.commit).Seconds(), 0)
		}
		// The oldest unapplied record: the first one served and not known
		// applied, else the first of the segment holding applied+1.
		var oldest time.Time
		if len(r.served) > 0 {
			oldest = r.served[0].commit
		}
		if oldest.IsZero() {
			for _, s := range r.segs {
				if s.last > r.applied.seq {
					oldest = s.firstCommit
					break
				}
			}
		}
		if !oldest.IsZero() {
			st.OldestUnappliedSeconds = max(time.Since(oldest).Seconds(), 0)
		}
	}
	return st
}
