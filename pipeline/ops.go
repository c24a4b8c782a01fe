package pipeline

import (
	"sync"
	"time"

	"github.com/hamal-replication/hamal/dag"
	"github.com/hamal-replication/hamal/event"
)

// opsState is what the channel keeps only for operators: the source
// heartbeats on their way to the applier and the session's DAG, for
// metrics and /status.
type opsState struct {
	mu    sync.Mutex
	sched *dag.Scheduler[*event.Txn] // of the current session; nil between sessions
	// pendingBeats are heartbeats read but not yet passed by the
	// watermark, oldest first. A heartbeat counts as applied once every
	// Txn before it was applied: then the lag it shows is the applier's.
	pendingBeats []heartbeatMark
	// appliedBeat is the newest heartbeat time passed by the watermark.
	appliedBeat time.Time
}

type heartbeatMark struct {
	seq uint64
	at  time.Time
}

// maxPendingBeats bounds pendingBeats when nobody scrapes and the applier
// is stuck: older entries are dropped, which only delays the heartbeat
// lag's recovery, never makes it look smaller than it is.
const maxPendingBeats = 4096

// opsSnapshot is one consistent read of the operator view.
type opsSnapshot struct {
	heartbeat        time.Time // newest applied heartbeat; zero when none
	sourceSeq        uint64
	sourceCommit     time.Time
	checkpointSeq    uint64
	checkpointCommit time.Time
	dag              dag.Stats
}

// startSessionOps is called when a session starts with its scheduler;
// seqs start over, so heartbeats of the previous session are dropped.
func (c *Channel) startSessionOps(sched *dag.Scheduler[*event.Txn]) {
	c.ops.mu.Lock()
	defer c.ops.mu.Unlock()
	c.ops.sched = sched
	c.ops.pendingBeats = c.ops.pendingBeats[:0]
}

// noteRead is called by the reader after it issued txn as seq.
func (c *Channel) noteRead(seq uint64, txn *event.Txn) {
	if txn.Heartbeat.IsZero() {
		return
	}
	c.metrics.heartbeats.Inc()
	c.ops.mu.Lock()
	defer c.ops.mu.Unlock()
	if len(c.ops.pendingBeats) >= maxPendingBeats {
		c.ops.pendingBeats = append(c.ops.pendingBeats[:0], c.ops.pendingBeats[1:]...)
	}
	c.ops.pendingBeats = append(c.ops.pendingBeats, heartbeatMark{seq: seq, at: txn.Heartbeat})
}

func (c *Channel) opsSnapshot() opsSnapshot {
	var o opsSnapshot
	c.mu.Lock()
	tracker, persister, saved := c.tracker, c.persister, c.savedCP
	c.mu.Unlock()
	o.checkpointSeq, o.checkpointCommit = saved.Seq, saved.CommitTime
	if persister != nil {
		if cp, ok := persister.Last(); ok {
			o.checkpointSeq, o.checkpointCommit = cp.Seq, cp.CommitTime
		}
	}
	var watermark uint64
	if tracker != nil {
		if m, ok := tracker.Issued(); ok {
			o.sourceSeq, o.sourceCommit = m.Seq, m.CommitTime
		}
		if m, ok := tracker.Watermark(); ok {
			watermark = m.Seq
		}
	}
	c.ops.mu.Lock()
	defer c.ops.mu.Unlock()
	n := 0
	for n < len(c.ops.pendingBeats) && c.ops.pendingBeats[n].seq <= watermark {
		if at := c.ops.pendingBeats[n].at; at.After(c.ops.appliedBeat) {
			c.ops.appliedBeat = at
		}
		n++
	}
	c.ops.pendingBeats = append(c.ops.pendingBeats[:0], c.ops.pendingBeats[n:]...)
	o.heartbeat = c.ops.appliedBeat
	if c.ops.sched != nil {
		o.dag = c.ops.sched.Stats()
	}
	return o
}

// OpsStatus is the operator detail of Status that metrics also export.
type OpsStatus struct {
	// HeartbeatLagSeconds is now minus the newest applied source
	// heartbeat; absent until one was applied.
	HeartbeatLagSeconds *float64  `json:"heartbeat_lag_seconds,omitempty"`
	HeartbeatAt         time.Time `json:"heartbeat_at,omitzero"`
	DAGReady            int       `json:"dag_ready"`
	Workers             int       `json:"workers"`
	WorkersBusy         int       `json:"workers_busy"`
	SourceConnected     bool      `json:"source_connected"`
	// Paused is true between POST /pause and /resume, whatever the state
	// (a channel paused while starting or retrying stays paused).
	Paused bool `json:"paused"`
}

func (c *Channel) opsStatus() OpsStatus {
	o := c.opsSnapshot()
	st := OpsStatus{DAGReady: o.dag.Ready, Workers: c.opts.Workers, SourceConnected: c.sourceConnected.Load(),
		WorkersBusy: int(c.busyWorkers.Load())}
	c.mu.Lock()
	st.Paused = c.paused
	c.mu.Unlock()
	if !o.heartbeat.IsZero() {
		lag := max(time.Since(o.heartbeat).Seconds(), 0)
		st.HeartbeatLagSeconds, st.HeartbeatAt = &lag, o.heartbeat
	}
	return st
}
