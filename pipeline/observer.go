package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/dag"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/redact"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

// Status is a snapshot of a channel for /status and `hamal status`.
type Status struct {
	Name               string    `json:"name"`
	State              State     `json:"state"`
	SourcePosition     string    `json:"source_position"`
	CheckpointPosition string    `json:"checkpoint_position"`
	CheckpointSavedAt  time.Time `json:"checkpoint_saved_at"`
	LagSeconds         float64   `json:"lag_seconds"`
	AppliedTxns        uint64    `json:"applied_txns"`
	AppliedRows        uint64    `json:"applied_rows"`
	InFlight           int       `json:"in_flight"`
	// LastError is the error the channel is in now: set in states
	// retrying and error, "" once it runs again (the error is then
	// LastResolvedError).
	LastError   string    `json:"last_error"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// ResolvedErrors counts errors that were retried until the work
	// succeeded (a deadlock retried, a reconnect); LastResolvedError is
	// the latest.
	ResolvedErrors      uint64    `json:"resolved_errors"`
	LastResolvedError   string    `json:"last_resolved_error,omitempty"`
	LastResolvedErrorAt time.Time `json:"last_resolved_error_at,omitzero"`
	// ErrorsRedacted is true when the error texts above had row data
	// removed (a response without the admin token); the log has the full
	// text.
	ErrorsRedacted bool      `json:"errors_redacted,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	// Relay is the relay log's state, when the channel has one.
	Relay *RelayStatus `json:"relay,omitempty"`
	// Snapshot is the snapshot phase's progress, when the channel has one
	// (Options.Seed) and it has begun.
	Snapshot *SnapshotStatus `json:"snapshot,omitempty"`
	OpsStatus
}

// SnapshotStatus is a Seeder's progress, in /status under "snapshot".
type SnapshotStatus struct {
	// State is "preparing" (checks, before the position is taken),
	// "copying" or "done".
	State string `json:"state"`
	// Position is where the stream starts: the position the copy was
	// taken at (the hand-off position).
	Position      string          `json:"position,omitempty"`
	StartedAt     time.Time       `json:"started_at"`
	FinishedAt    time.Time       `json:"finished_at,omitzero"`
	TablesTotal   int             `json:"tables_total"`
	TablesDone    int             `json:"tables_done"`
	RowsCopied    int64           `json:"rows_copied"`
	RowsEstimated int64           `json:"rows_estimated"`
	RowsPerSecond float64         `json:"rows_per_second"`
	ETASeconds    float64         `json:"eta_seconds"`
	Tables        []SnapshotTable `json:"tables,omitempty"`
}

// SnapshotTable is one table's copy progress.
type SnapshotTable struct {
	Table         string `json:"table"`
	RowsCopied    int64  `json:"rows_copied"`
	RowsEstimated int64  `json:"rows_estimated"`
	Done          bool   `json:"done"`
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

// RelayStatus is a relay log's operator view, in /status under "relay"
// (package relay fills it).
type RelayStatus struct {
	Dir string `json:"dir"`
	// State is the relay reader's state: starting, reading, relay full,
	// source retrying, error, stopped. Reason says why when it is not
	// reading.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// ReadSeq/ReadPosition: the last record the relay read from the source
	// and holds. AppliedSeq/AppliedPosition: the last record the applier's
	// checkpoint names.
	ReadSeq           uint64    `json:"read_seq"`
	ReadPosition      string    `json:"read_position"`
	ReadCommitTime    time.Time `json:"read_commit_time,omitzero"`
	AppliedSeq        uint64    `json:"applied_seq"`
	AppliedPosition   string    `json:"applied_position"`
	AppliedCommitTime time.Time `json:"applied_commit_time,omitzero"`
	// Txns is how many records the applier has not applied; Bytes what the
	// segment files hold (applied records included until deleted).
	Txns     uint64 `json:"txns"`
	Bytes    int64  `json:"bytes"`
	MaxBytes int64  `json:"max_bytes"`
	Segments int    `json:"segments"`
	Full     bool   `json:"full"`
	// ReadAheadSeconds is the source commit time between the two
	// positions; OldestUnappliedSeconds the age (now minus source commit
	// time) of the oldest record not applied, 0 when none.
	ReadAheadSeconds       float64 `json:"read_ahead_seconds"`
	OldestUnappliedSeconds float64 `json:"oldest_unapplied_seconds"`
}

// observer is a channel's read-only view: what /status and the metrics
// show. The session and the supervisor report to it (the note methods
// below, each cheap and non-blocking: the reader calls read once per Txn);
// Status and scrapes read it from any goroutine. It never acts on the data
// path.
//
// To show a new part of a channel (a phase, a copy's progress): a field in
// Status (or a small struct beside RelayStatus), an optional interface in
// Options like RelayLog, one line in status() and, for a gauge, a line in
// gaugeHelp and in channelCollector.Collect.
type observer struct {
	name      string
	workers   int
	relay     RelayLog // nil without a relay
	seed      Seeder   // nil without a snapshot phase
	life      *supervisor
	startedAt time.Time

	metrics *metrics

	// Per Txn or per batch: atomics, so the data path takes no lock for them.
	appliedTxns     atomic.Uint64
	appliedRows     atomic.Uint64
	sourceConnected atomic.Bool
	lastContact     atomic.Int64 // unix nanos of the last Txn read
	busyWorkers     atomic.Int64

	mu sync.Mutex
	// sourcePos is the position of the last Txn read, or of resume before
	// the session read one: the observer never goes blank after a restart
	// with nothing new to read.
	sourcePos event.Position
	// resume is the checkpoint the current session started from (loaded
	// by New before the first), with Seq 0: seqs are the session's, and
	// it names the Txn before the session's seq 1.
	resume  checkpoint.Checkpoint
	savedCP checkpoint.Checkpoint // the last checkpoint known persisted
	// The current session's parts; nil before the first session.
	tracker   *checkpoint.Tracker
	persister *checkpoint.Persister
	sched     *dag.Scheduler[*event.Txn]
	source    Contacter // the open source, when it is a Contacter
	// conflicts counts what closed sinks detected; liveSink is the open
	// one, when it is a ConflictCounter. Both under mu, so the sum never
	// goes back.
	conflicts uint64
	liveSink  ConflictCounter
	// Per-table counts of the sinks: foreign writes (ownership guard) and
	// unique replacements.
	foreign      tableCounts
	replacements tableCounts
	// saves counts the checkpoints persisted by ended sessions; the
	// current persister counts its own.
	saves uint64
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

// newObserver starts with saved, the checkpoint a first session will
// resume from, as both the checkpoint and the source position.
func newObserver(name string, workers int, relay RelayLog, life *supervisor, saved checkpoint.Checkpoint) *observer {
	o := &observer{name: name, workers: workers, relay: relay, life: life, startedAt: time.Now()}
	o.resumeAt(saved)
	return o
}

// resumeAt shows cp as where the channel stands. o.mu is held, or o is not
// shared yet.
func (o *observer) resumeAt(cp checkpoint.Checkpoint) {
	cp.Seq = 0
	o.resume, o.savedCP, o.sourcePos = cp, cp, cp.Pos
}

// register builds the channel's metrics and registers them on reg (nil:
// metrics are kept but not exported).
func (o *observer) register(reg prometheus.Registerer) error {
	m, err := newMetrics(reg, o)
	if err != nil {
		return err
	}
	o.metrics = m
	return nil
}

// unregister removes the channel's metrics from the Registerer.
func (o *observer) unregister() { o.metrics.unregister() }

// sessionStarted is called when a session starts, with the checkpoint it
// resumes from and its parts. Seqs start over, so heartbeats of the
// previous session are dropped.
func (o *observer) sessionStarted(resume checkpoint.Checkpoint, tracker *checkpoint.Tracker, persister *checkpoint.Persister, sched *dag.Scheduler[*event.Txn]) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.resumeAt(resume)
	if o.persister != nil {
		o.saves += o.persister.Saves()
	}
	o.tracker, o.persister, o.sched = tracker, persister, sched
	o.pendingBeats = o.pendingBeats[:0]
}

// sinkOpened is called with the session's sink; the function it returns is
// called when the sink is closed.
func (o *observer) sinkOpened(snk sink.Sink) func() {
	cc, _ := snk.(ConflictCounter)
	var foreign, replacements func() map[string]uint64
	if fw, ok := snk.(ForeignWriteCounter); ok {
		foreign = fw.ForeignWrites
	}
	if ur, ok := snk.(UniqueReplacementCounter); ok {
		replacements = ur.UniqueReplacements
	}
	if cc == nil && foreign == nil && replacements == nil {
		return func() {}
	}
	o.mu.Lock()
	o.liveSink = cc
	o.foreign.live, o.replacements.live = foreign, replacements
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		if cc != nil {
			o.conflicts += cc.Conflicts()
		}
		o.foreign.close()
		o.replacements.close()
		o.liveSink = nil
		o.mu.Unlock()
	}
}

// tableCounts is a per-table count of the sinks a channel opens: what
// closed sinks counted, and the open sink's own count (live, nil when the
// open sink has none). Guarded by observer.mu.
type tableCounts struct {
	closed map[string]uint64
	live   func() map[string]uint64
}

// close folds the open sink's counts into closed.
func (c *tableCounts) close() {
	if c.live == nil {
		return
	}
	if c.closed == nil {
		c.closed = map[string]uint64{}
	}
	for t, n := range c.live() {
		c.closed[t] += n
	}
	c.live = nil
}

// sum is the count per table over every sink.
func (c *tableCounts) sum() map[string]uint64 {
	out := make(map[string]uint64, len(c.closed))
	for t, n := range c.closed {
		out[t] = n
	}
	if c.live != nil {
		for t, n := range c.live() {
			out[t] += n
		}
	}
	return out
}

// foreignWrites is the number of foreign writes, per table, flagged by
// every sink the channel has opened.
func (o *observer) foreignWrites() map[string]uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.foreign.sum()
}

// uniqueReplacements is the number of target rows, per table, that every
// sink the channel has opened replaced for a unique value.
func (o *observer) uniqueReplacements() map[string]uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.replacements.sum()
}

// sourceOpened and sourceClosed bracket the time the source stream is open.
func (o *observer) sourceOpened(src source.Source) {
	ct, _ := src.(Contacter)
	o.mu.Lock()
	o.source = ct
	o.mu.Unlock()
	o.sourceConnected.Store(true)
}

func (o *observer) sourceClosed() { o.sourceConnected.Store(false) }

// read is called by the reader after it issued txn as seq.
func (o *observer) read(seq uint64, txn *event.Txn) {
	o.lastContact.Store(time.Now().UnixNano())
	o.mu.Lock()
	o.sourcePos = txn.Pos
	if !txn.Heartbeat.IsZero() {
		if len(o.pendingBeats) >= maxPendingBeats {
			o.pendingBeats = append(o.pendingBeats[:0], o.pendingBeats[1:]...)
		}
		o.pendingBeats = append(o.pendingBeats, heartbeatMark{seq: seq, at: txn.Heartbeat})
	}
	o.mu.Unlock()
	if !txn.Heartbeat.IsZero() {
		o.metrics.heartbeats.Inc()
	}
}

// sourcePosition is the position of the last Txn read, as text.
func (o *observer) sourcePosition() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sourcePos.String()
}

func (o *observer) loopDropped()                                  { o.metrics.loopDropped.Inc() }
func (o *observer) countError(class string)                       { o.metrics.errors.WithLabelValues(class).Inc() }
func (o *observer) countRetry(side string)                        { o.metrics.retries.WithLabelValues(side).Inc() }
func (o *observer) countResolved(what string)                     { o.metrics.resolved.WithLabelValues(what).Inc() }
func (o *observer) workerBusy(delta int64)                        { o.busyWorkers.Add(delta) }
func (o *observer) applied(part []*event.Txn, took time.Duration) { o.metrics.applied(part, took) }

// appliedBatch counts a batch whose Txns are all applied and done.
func (o *observer) appliedBatch(txns, rows int) {
	o.appliedTxns.Add(uint64(txns))
	o.appliedRows.Add(uint64(rows))
}

// saved is called after the session flushed its persister.
func (o *observer) saved(p *checkpoint.Persister) {
	if cp, ok := p.Last(); ok {
		o.mu.Lock()
		o.savedCP = cp
		o.mu.Unlock()
	}
}

// conflictCount is the number of conflicts detected by every sink the
// channel has opened.
func (o *observer) conflictCount() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.conflicts
	if o.liveSink != nil {
		n += o.liveSink.Conflicts()
	}
	return n
}

// checkpointSaves is the number of checkpoints every session persisted.
func (o *observer) checkpointSaves() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.saves
	if o.persister != nil {
		n += o.persister.Saves()
	}
	return n
}

func (o *observer) checkpointAge() time.Duration {
	o.mu.Lock()
	p := o.persister
	saved := o.savedCP.SavedAt
	o.mu.Unlock()
	if p != nil {
		if cp, ok := p.Last(); ok {
			saved = cp.SavedAt
		}
	}
	if saved.IsZero() {
		return 0
	}
	return time.Since(saved)
}

// opsSnapshot is one consistent read of the operator view.
type opsSnapshot struct {
	heartbeat        time.Time // newest applied heartbeat; zero when none
	sourceSeq        uint64
	sourceCommit     time.Time
	checkpointSeq    uint64
	checkpointCommit time.Time
	dag              dag.Stats
}

func (o *observer) opsSnapshot() opsSnapshot {
	var s opsSnapshot
	o.mu.Lock()
	tracker, persister, resume := o.tracker, o.persister, o.resume
	o.mu.Unlock()
	// Until the session read (or persisted) something, both positions are
	// the checkpoint it resumed from: seq 0, its commit time.
	s.sourceCommit = resume.CommitTime
	s.checkpointCommit = resume.CommitTime
	if persister != nil {
		if cp, ok := persister.Last(); ok {
			s.checkpointSeq, s.checkpointCommit = cp.Seq, cp.CommitTime
		}
	}
	var watermark uint64
	if tracker != nil {
		if m, ok := tracker.Issued(); ok {
			s.sourceSeq, s.sourceCommit = m.Seq, m.CommitTime
		}
		if m, ok := tracker.Watermark(); ok {
			watermark = m.Seq
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for n < len(o.pendingBeats) && o.pendingBeats[n].seq <= watermark {
		if at := o.pendingBeats[n].at; at.After(o.appliedBeat) {
			o.appliedBeat = at
		}
		n++
	}
	o.pendingBeats = append(o.pendingBeats[:0], o.pendingBeats[n:]...)
	s.heartbeat = o.appliedBeat
	if o.sched != nil {
		s.dag = o.sched.Stats()
	}
	return s
}

func (o *observer) opsStatus(life lifecycle) OpsStatus {
	s := o.opsSnapshot()
	st := OpsStatus{DAGReady: s.dag.Ready, Workers: o.workers, SourceConnected: o.sourceConnected.Load(),
		WorkersBusy: int(o.busyWorkers.Load()), Paused: life.paused}
	if !s.heartbeat.IsZero() {
		lag := max(time.Since(s.heartbeat).Seconds(), 0)
		st.HeartbeatLagSeconds, st.HeartbeatAt = &lag, s.heartbeat
	}
	return st
}

// status returns a snapshot; safe from any goroutine.
func (o *observer) status() Status {
	life := o.life.snapshot()
	o.mu.Lock()
	st := Status{
		Name: o.name, State: life.state, SourcePosition: o.sourcePos.String(),
		CheckpointPosition: o.savedCP.Pos.String(), CheckpointSavedAt: o.savedCP.SavedAt,
		LastError: life.lastErr, LastErrorAt: life.lastErrAt, StartedAt: o.startedAt,
		ResolvedErrors: life.resolved, LastResolvedError: life.lastResolved, LastResolvedErrorAt: life.lastResolvedAt,
		AppliedTxns: o.appliedTxns.Load(), AppliedRows: o.appliedRows.Load(),
	}
	tracker, persister, contact := o.tracker, o.persister, o.source
	o.mu.Unlock()
	st.OpsStatus = o.opsStatus(life)
	if o.relay != nil {
		rs := o.relay.Status()
		st.Relay = &rs
	}
	if o.seed != nil {
		st.Snapshot = o.seed.Progress()
	}
	if persister != nil {
		if cp, ok := persister.Last(); ok {
			st.CheckpointPosition, st.CheckpointSavedAt = cp.Pos.String(), cp.SavedAt
		}
	}
	now := time.Now()
	if tracker != nil {
		n, oldest, ok := tracker.Pending()
		st.InFlight = n
		if ok {
			st.LagSeconds = max(now.Sub(oldest).Seconds(), 0)
		}
	}
	if st.InFlight == 0 && !o.sourceConnected.Load() && st.State != StateStopped {
		// Nothing pending, but the source is not streaming: we cannot know
		// what we miss; report the time since we last heard from it.
		last := time.Unix(0, o.lastContact.Load())
		if contact != nil && contact.LastContact().After(last) {
			last = contact.LastContact()
		}
		if o.lastContact.Load() != 0 {
			st.LagSeconds = max(now.Sub(last).Seconds(), 0)
		}
	}
	return st
}

// Redact returns st with row data removed from its error texts (package
// redact), for responses that carry no credential.
func (st Status) Redact() Status {
	st.LastError = redact.Message(st.LastError)
	st.LastResolvedError = redact.Message(st.LastResolvedError)
	if st.Relay != nil {
		r := *st.Relay
		r.Reason = redact.Message(r.Reason)
		st.Relay = &r
	}
	st.ErrorsRedacted = true
	return st
}
