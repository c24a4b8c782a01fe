package reshard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
	Name          string            `json:"name"`
	Phase         Phase             `json:"phase"`
	CutoverStep   string            `json:"cutover_step,omitempty"`
	RowsCopied    int64             `json:"rows_copied"`
	RowsEstimated int64             `json:"rows_estimated"`
	RowsPerSecond float64           `json:"rows_per_second"`
	ETASeconds    float64           `json:"eta_seconds"`
	Throttled     bool              `json:"throttled"`
	LagSeconds    float64           `json:"lag_seconds"`
	Tables        []TableStatus     `json:"tables"`
	Sources       []SourceState     `json:"sources"`
	Cutover       CutoverState      `json:"cutover"`
	Verify        *VerifyReport     `json:"verify,omitempty"`
	Verifying     bool              `json:"verifying"`
	VerifiedRows  int64             `json:"verified_rows"`
	Channels      []pipeline.Status `json:"channels,omitempty"`
	LastError     string            `json:"last_error,omitempty"`
	Record        string            `json:"record,omitempty"`
}

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
	for _, rc := range chans {
		cs := rc.ch.Status()
		st.Channels = append(st.Channels, cs)
		st.LagSeconds = max(st.LagSeconds, cs.LagSeconds)
	}
	return st
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
	allPhases   = []Phase{PhaseNew, PhaseCopy, PhaseCatchup, PhaseCutover, PhaseComplete, PhaseCancelled}
	descriptors = []*prometheus.Desc{descPhase, descCopied, descEst, descRate, descETA, descLag, descThrot, descVRows, descVMis, descVWrong}
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
//	GET  /status    JSON Status
//	GET  /metrics   Prometheus
//	GET  /healthz   200 while the process serves
//	POST /cutover   fence the sources and switch (returns once fenced)
//	POST /cancel    cancel the migration, rolling back a done cut-over
//	POST /complete  end a cut-over migration
//	POST /verify    verify again
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(status(r))
	})
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
	chans := make([]pipeline.Status, len(st.Channels))
	for i, c := range st.Channels {
		chans[i] = c.Redact()
	}
	if st.Channels != nil {
		st.Channels = chans
	}
	return st
}
