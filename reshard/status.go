package reshard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hamal-replication/hamal/admin"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/redact"
	"github.com/hamal-replication/hamal/tablecopy"
)

// Status is what `hamal migrate status`, /status and the metrics show.
type Status struct {
	Name          string        `json:"name"`
	Phase         Phase         `json:"phase"`
	CutoverStep   string        `json:"cutover_step,omitempty"`
	RowsCopied    int64         `json:"rows_copied"`
	RowsEstimated int64         `json:"rows_estimated"`
	RowsPerSecond float64       `json:"rows_per_second"`
	ETASeconds    float64       `json:"eta_seconds"`
	Throttled     bool          `json:"throttled"`
	LagSeconds    float64       `json:"lag_seconds"`
	Tables        []TableStatus `json:"tables"`
	Sources       []SourceState `json:"sources"`
	Cutover       CutoverState  `json:"cutover"`
	Verify        *VerifyReport `json:"verify,omitempty"`
	Verifying     bool          `json:"verifying"`
	VerifiedRows  int64         `json:"verified_rows"`
	// VerifyStale says why Verify no longer describes the data ("" while
	// it does): it is from an earlier run of the process, or from before
	// the cut-over.
	VerifyStale string          `json:"verify_stale,omitempty"`
	Channels    []ChannelStatus `json:"channels,omitempty"`
	// Reverse is reverse replication's health (targets → sources after the
	// cut-over), the way back if the targets go wrong.
	Reverse ReverseStatus `json:"reverse"`
	// Rollback says whether `hamal migrate cancel` can put the sources
	// back as the primary now without losing a write, and why (not).
	Rollback  Rollback `json:"rollback"`
	LastError string   `json:"last_error,omitempty"`
	Record    string   `json:"record,omitempty"`
	// ProcessStartedAt is when the serving process started ("" when the
	// status was read from the state dir: no process runs).
	ProcessStartedAt time.Time `json:"process_started_at,omitzero"`
}

// Directions of a migration channel.
const (
	DirectionForward = "forward" // catch-up: a source → the targets
	DirectionReverse = "reverse" // reverse replication: a target → the sources
)

// ChannelStatus is one running channel of the migration: the pipeline's
// status and which way it replicates.
type ChannelStatus struct {
	pipeline.Status
	Direction string `json:"direction"`
	// From names the server it reads, To the servers it writes.
	From string `json:"from"`
	To   string `json:"to"`
}

// ReverseStatus is reverse replication's health.
type ReverseStatus struct {
	// State is "not started" (before the cut-over's switch), "running"
	// (every reverse channel applies), "failing" (a channel is in state
	// error or retrying: see Problems), "not available" (a merge without
	// source_rule) or "stopped" (the migration ended).
	State string `json:"state"`
	// Channels counts the running reverse channels; the cut-over starts
	// one per target.
	Channels int `json:"channels"`
	// LagSeconds is the largest lag among the reverse channels that apply;
	// a channel that cannot apply has no lag, only a problem.
	LagSeconds float64 `json:"lag_seconds"`
	// Problems names each reverse channel that does not apply, with its
	// error.
	Problems []string `json:"problems,omitempty"`
}

// Rollback is whether the migration can be rolled back now.
type Rollback struct {
	Ready bool   `json:"ready"`
	Why   string `json:"why"`
}

// Reverse replication states.
const (
	ReverseNotStarted   = "not started"
	ReverseRunning      = "running"
	ReverseFailing      = "failing"
	ReverseNotAvailable = "not available"
	ReverseStopped      = "stopped"
)

// TableStatus is one table's copy progress.
type TableStatus struct {
	Table         string `json:"table"`
	RowsCopied    int64  `json:"rows_copied"`
	RowsEstimated int64  `json:"rows_estimated"`
	Done          bool   `json:"done"`
}

// Status returns a snapshot of the migration.
func (m *Migration) Status() Status {
	m.mu.Lock()
	st := Status{Name: m.plan.Name, Phase: m.st.Phase, CutoverStep: m.st.Cutover.Step, Sources: append([]SourceState(nil), m.st.Sources...),
		Cutover: m.st.Cutover, Verify: m.st.Verify, Verifying: m.verifying, LastError: m.lastErr, Record: m.st.Record}
	done := map[string]bool{}
	for _, t := range m.plan.Tables {
		done[t.Name] = len(m.st.Segments) > 0
	}
	for _, seg := range m.st.Segments {
		if !seg.Done {
			done[seg.Table] = false
		}
	}
	chans := append([]*runningChannel(nil), m.channels...)
	m.mu.Unlock()
	st.RowsCopied = m.rowsCopied.Load()
	st.VerifiedRows = m.verifiedRows.Load()
	st.Throttled = m.throttled.Load()
	for _, t := range m.plan.Tables {
		ts := TableStatus{Table: t.Name, RowsCopied: m.tableCopied[t.Name].Load(), Done: done[t.Name]}
		if info := m.infos[t.Name]; info != nil {
			ts.RowsEstimated = info.rows
		}
		if ts.RowsEstimated < ts.RowsCopied || ts.Done {
			ts.RowsEstimated = max(ts.RowsEstimated, ts.RowsCopied)
		}
		st.RowsEstimated += ts.RowsEstimated
		st.Tables = append(st.Tables, ts)
	}
	st.RowsPerSecond = m.rate.PerSecond()
	if st.Phase == PhaseCopy {
		st.ETASeconds = tablecopy.ETA(st.RowsCopied, st.RowsEstimated, st.RowsPerSecond).Seconds()
	}
	st.ProcessStartedAt = m.startedAt
	for _, rc := range chans {
		cs := ChannelStatus{Status: rc.ch.Status(), Direction: DirectionForward, From: rc.from, To: "targets"}
		if !rc.forward {
			cs.Direction, cs.To = DirectionReverse, "sources"
		}
		st.Channels = append(st.Channels, cs)
		st.LagSeconds = max(st.LagSeconds, cs.LagSeconds)
	}
	st.Reverse = reverseStatus(st.Phase, st.CutoverStep, m.plan, st.Channels)
	st.Rollback = rollbackReady(st.Phase, st.CutoverStep, st.Reverse)
	st.VerifyStale = verifyStale(st.Verify, st.ProcessStartedAt, st.Cutover)
	return st
}

// StatusFromState is the status of a migration no process serves, from
// its recorded state (hamal migrate status reads it from the state dir):
// no channel runs, so after the switch reverse replication does not run
// either and rollback waits for the process.
func StatusFromState(p *Plan, state *State) Status {
	st := Status{Name: p.Name, Phase: state.Phase, CutoverStep: state.Cutover.Step, Sources: state.Sources,
		Cutover: state.Cutover, Verify: state.Verify, Record: state.Record}
	for _, seg := range state.Segments {
		st.RowsCopied += seg.Rows
	}
	st.Reverse = reverseStatus(st.Phase, st.CutoverStep, p, nil)
	st.Rollback = rollbackReady(st.Phase, st.CutoverStep, st.Reverse)
	st.VerifyStale = verifyStale(st.Verify, time.Time{}, st.Cutover)
	if st.Phase != PhaseComplete && st.Phase != PhaseCancelled {
		st.LastError = "the migration process is not running: start it again with hamal migrate start (it resumes)"
		if st.Reverse.State == ReverseFailing {
			st.Reverse.Problems = []string{"no process runs the reverse channels"}
			st.Rollback = Rollback{Why: "the migration process is not running, so reverse replication does not run: start it again with hamal migrate start"}
		}
	}
	return st
}

// channelProblem says why a channel does not apply ("" while it does).
func channelProblem(c ChannelStatus) string {
	switch c.State {
	case pipeline.StateRunning, pipeline.StatePaused:
		return ""
	case pipeline.StateStarting:
		if c.LastError == "" {
			return "" // opening; not a problem yet
		}
	}
	p := fmt.Sprintf("%s (%s → %s) is in state %s", c.Name, c.From, c.To, c.State)
	if c.LastError != "" {
		p += ": " + c.LastError
	}
	return p
}

// reverseStatus derives reverse replication's health from the phase and
// the running channels.
func reverseStatus(phase Phase, step string, p *Plan, chans []ChannelStatus) ReverseStatus {
	var rs ReverseStatus
	switch {
	case phase == PhaseComplete || phase == PhaseCancelled:
		rs.State = ReverseStopped
		return rs
	case phase != PhaseCutover || step != StepSwitched:
		rs.State = ReverseNotStarted
		return rs
	case !p.reversible():
		rs.State = ReverseNotAvailable
		return rs
	}
	for _, c := range chans {
		if c.Direction != DirectionReverse {
			continue
		}
		rs.Channels++
		if pr := channelProblem(c); pr != "" {
			rs.Problems = append(rs.Problems, pr)
			continue
		}
		rs.LagSeconds = max(rs.LagSeconds, c.LagSeconds)
	}
	switch {
	case len(rs.Problems) > 0:
		rs.State = ReverseFailing
	case rs.Channels < len(p.Targets):
		rs.State = ReverseFailing
		rs.Problems = append(rs.Problems, fmt.Sprintf("%d of %d reverse channels running", rs.Channels, len(p.Targets)))
	default:
		rs.State = ReverseRunning
	}
	return rs
}

// rollbackReady says whether cancel can make the sources the primary
// again now without losing a write.
func rollbackReady(phase Phase, step string, rs ReverseStatus) Rollback {
	switch {
	case phase == PhaseComplete:
		return Rollback{Why: "the migration is complete: the targets are the primary"}
	case phase == PhaseCancelled:
		return Rollback{Why: "the migration is cancelled: the sources are the primary"}
	case phase != PhaseCutover:
		return Rollback{Ready: true, Why: "before the cut-over: cancel stops the migration; the sources were never fenced"}
	case step != StepSwitched:
		return Rollback{Ready: true, Why: "the cut-over waits for the targets: cancel unfences the sources"}
	case rs.State == ReverseNotAvailable:
		return Rollback{Why: "a merge without tables[].source_rule has no reverse replication: the sources miss every write made on the targets"}
	case rs.State != ReverseRunning:
		return Rollback{Why: "reverse replication is not applying, so the sources miss writes made on the targets: " + strings.Join(rs.Problems, "; ")}
	}
	why := fmt.Sprintf("reverse replication runs on %d channel(s), lag %.1fs: cancel fences the targets, drains it into the sources and unfences them", rs.Channels, rs.LagSeconds)
	return Rollback{Ready: true, Why: why}
}

// verifyStale says why a verify report no longer describes the data.
func verifyStale(v *VerifyReport, processStart time.Time, co CutoverState) string {
	switch {
	case v == nil:
		return ""
	case !co.SwitchedAt.IsZero() && v.FinishedAt.Before(co.SwitchedAt):
		return "from before the cut-over"
	case processStart.IsZero():
		return "" // read from the state dir: shown as recorded
	case v.FinishedAt.Before(processStart):
		return fmt.Sprintf("from an earlier run of the migration process (this one started %s); writes since are not verified: run hamal migrate verify", processStart.Format(time.RFC3339))
	}
	return ""
}

// collector exports the migration's figures (docs/metrics.md).
type collector struct{ m *Migration }

// MetricsForDocs returns a collector that describes every migration metric
// and collects none, for the test that keeps docs/metrics.md complete.
func MetricsForDocs() prometheus.Collector { return &collector{} }

var (
	labels      = []string{"migration"}
	descPhase   = prometheus.NewDesc("hamal_migrate_phase", "1 for the migration's current phase (new, copy, catchup, cutover, complete, cancelled).", append(labels, "phase"), nil)
	descCopied  = prometheus.NewDesc("hamal_migrate_rows_copied_total", "Rows the copy phase wrote to the targets, by source table.", append(labels, "table"), nil)
	descEst     = prometheus.NewDesc("hamal_migrate_rows_estimated", "Estimated rows to copy (information_schema TABLE_ROWS summed over sources), by source table.", append(labels, "table"), nil)
	descRate    = prometheus.NewDesc("hamal_migrate_copy_rows_per_second", "Copy rate over the last ten seconds.", labels, nil)
	descETA     = prometheus.NewDesc("hamal_migrate_copy_eta_seconds", "Estimated seconds until the copy is done (0 outside the copy phase).", labels, nil)
	descLag     = prometheus.NewDesc("hamal_migrate_lag_seconds", "Largest replication lag among the migration's running channels (catch-up or reverse).", labels, nil)
	descThrot   = prometheus.NewDesc("hamal_migrate_copy_throttled", "1 while the copy waits for source load (Threads_running or replica lag) to drop.", labels, nil)
	descVRows   = prometheus.NewDesc("hamal_migrate_verify_rows_total", "Source rows compared by verify runs of this process.", labels, nil)
	descVMis    = prometheus.NewDesc("hamal_migrate_verify_mismatches", "Rows that differed in the last verify (missing, extra, differing, duplicated), by table.", append(labels, "table"), nil)
	descVWrong  = prometheus.NewDesc("hamal_migrate_verify_wrong_shard", "Rows the last verify found on a target the rule does not name, by table.", append(labels, "table"), nil)
	descChLag   = prometheus.NewDesc("hamal_migrate_channel_lag_seconds", "Replication lag of one running migration channel, by direction (forward: catch-up, reverse: targets → sources after the cut-over); absent while the channel cannot apply (see hamal_migrate_channel_state).", append(labels, "channel", "direction"), nil)
	descChState = prometheus.NewDesc("hamal_migrate_channel_state", "1 for the state a running migration channel is in (starting, running, paused, retrying, error, stopped), by direction.", append(labels, "channel", "direction", "state"), nil)
	descRevUp   = prometheus.NewDesc("hamal_migrate_reverse_channels_running", "Reverse-replication channels that apply (one per target once the cut-over switched).", labels, nil)
	descRollbk  = prometheus.NewDesc("hamal_migrate_rollback_ready", "1 while cancel can make the sources the primary again without losing a write (after the switch: every reverse channel applies).", labels, nil)
	allPhases   = []Phase{PhaseNew, PhaseCopy, PhaseCatchup, PhaseCutover, PhaseComplete, PhaseCancelled}
	chStates    = []pipeline.State{pipeline.StateStarting, pipeline.StateRunning, pipeline.StatePaused, pipeline.StateRetrying, pipeline.StateError, pipeline.StateStopped}
	descriptors = []*prometheus.Desc{descPhase, descCopied, descEst, descRate, descETA, descLag, descThrot, descVRows, descVMis, descVWrong,
		descChLag, descChState, descRevUp, descRollbk}
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descriptors {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if c.m == nil {
		return // MetricsForDocs: descriptions only
	}
	st := c.m.Status()
	name := st.Name
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, p := range allPhases {
		ch <- prometheus.MustNewConstMetric(descPhase, prometheus.GaugeValue, b2f(st.Phase == p), name, string(p))
	}
	for _, t := range st.Tables {
		ch <- prometheus.MustNewConstMetric(descCopied, prometheus.CounterValue, float64(t.RowsCopied), name, t.Table)
		ch <- prometheus.MustNewConstMetric(descEst, prometheus.GaugeValue, float64(t.RowsEstimated), name, t.Table)
	}
	ch <- prometheus.MustNewConstMetric(descRate, prometheus.GaugeValue, st.RowsPerSecond, name)
	ch <- prometheus.MustNewConstMetric(descETA, prometheus.GaugeValue, st.ETASeconds, name)
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, st.LagSeconds, name)
	ch <- prometheus.MustNewConstMetric(descThrot, prometheus.GaugeValue, b2f(st.Throttled), name)
	ch <- prometheus.MustNewConstMetric(descVRows, prometheus.CounterValue, float64(st.VerifiedRows), name)
	running := 0
	for _, c := range st.Channels {
		if c.Direction == DirectionReverse && channelProblem(c) == "" {
			running++
		}
		for _, s := range chStates {
			ch <- prometheus.MustNewConstMetric(descChState, prometheus.GaugeValue, b2f(c.State == s), name, c.Name, c.Direction, string(s))
		}
		if channelProblem(c) == "" {
			ch <- prometheus.MustNewConstMetric(descChLag, prometheus.GaugeValue, c.LagSeconds, name, c.Name, c.Direction)
		}
	}
	ch <- prometheus.MustNewConstMetric(descRevUp, prometheus.GaugeValue, float64(running), name)
	ch <- prometheus.MustNewConstMetric(descRollbk, prometheus.GaugeValue, b2f(st.Rollback.Ready), name)
	mis, wrong := map[string]int{}, map[string]int{}
	if st.Verify != nil {
		for _, t := range st.Verify.Tables {
			mis[t.Table], wrong[t.Table] = len(t.Mismatched), len(t.WrongShard)
		}
	}
	for _, t := range c.m.plan.Tables {
		ch <- prometheus.MustNewConstMetric(descVMis, prometheus.GaugeValue, float64(mis[t.Name]), name, t.Name)
		ch <- prometheus.MustNewConstMetric(descVWrong, prometheus.GaugeValue, float64(wrong[t.Name]), name, t.Name)
	}
}

// Handler serves the migration's admin API:
//
//	GET  /          the status page (admin/page/migrate.html)
//	GET  /status    JSON Status
//	GET  /metrics   Prometheus
//	GET  /healthz   200 while the process serves
//	POST /cutover   fence the sources and switch (returns once fenced)
//	POST /cancel    cancel the migration, rolling back a done cut-over
//	POST /complete  end a cut-over migration
//	POST /verify    verify again
//	POST /resume    restart the channels in state error from their checkpoints
//
// POST endpoints need "Authorization: Bearer <admin.token>" when a token
// is set (admin.Auth: compared in constant time; without a token the
// listener is loopback only, see admin.Listen). A request without the
// token gets error texts with their row data redacted.
func (m *Migration) Handler(gatherer prometheus.Gatherer) http.Handler {
	auth := admin.Auth{Token: m.plan.Admin.Token}
	status := func(r *http.Request) Status {
		st := m.Status()
		if !auth.Authorized(r) {
			st = st.Redact()
		}
		return st
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", admin.ServeMigratePage)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(status(r))
	})
	mux.Handle("POST /resume", auth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := m.ResumeChannels()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"resumed": n, "status": status(r)})
	})))
	for _, kind := range []string{"cutover", "cancel", "complete", "verify"} {
		mux.Handle("POST /"+kind, auth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), m.plan.Cutover.Timeout+time.Minute)
			defer cancel()
			if err := m.Request(ctx, kind); err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(status(r))
		})))
	}
	return mux
}

// Redact returns st with row data removed from its error texts, for a
// response without the admin token.
func (st Status) Redact() Status {
	st.LastError = redact.Message(st.LastError)
	chans := make([]ChannelStatus, len(st.Channels))
	for i, c := range st.Channels {
		chans[i] = c
		chans[i].Status = c.Status.Redact()
	}
	if st.Channels != nil {
		st.Channels = chans
	}
	probs := make([]string, len(st.Reverse.Problems))
	for i, p := range st.Reverse.Problems {
		probs[i] = redact.Message(p)
	}
	if st.Reverse.Problems != nil {
		st.Reverse.Problems = probs
	}
	st.Rollback.Why = redact.Message(st.Rollback.Why)
	return st
}
