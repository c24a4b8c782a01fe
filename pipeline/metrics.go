package pipeline

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/event"
)

// metrics are one channel's Prometheus series, all labelled channel=<name>.
// docs/metrics.md documents every one; a test in deploy/ checks that the
// dashboards and alerts name only series listed here.
//
// Label cardinality: "table" is the change's namespace (schema.table), so
// it grows with the number of replicated tables, not with rows or keys;
// "op", "kind", "side", "class" and "state" are small fixed sets.
type metrics struct {
	appliedTxns  *prometheus.CounterVec // kind
	appliedRows  *prometheus.CounterVec // op, table
	retries      *prometheus.CounterVec // side
	resolved     *prometheus.CounterVec // what
	errors       *prometheus.CounterVec // class
	batchTxns    prometheus.Histogram
	batchRows    prometheus.Histogram
	applySeconds prometheus.Histogram
	loopDropped  prometheus.Counter
	busySeconds  prometheus.Counter
	heartbeats   prometheus.Counter

	mu         sync.Mutex // guards registered against concurrent Close
	reg        prometheus.Registerer
	registered []prometheus.Collector
}

// newMetrics builds the channel's metrics and registers them on reg (when
// not nil). Registration is all or nothing: after an error nothing of the
// channel stays registered.
func newMetrics(reg prometheus.Registerer, o *observer) (*metrics, error) {
	labels := prometheus.Labels{"channel": o.name}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
	}
	counterVec := func(name, help string, l ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, l)
	}
	m := &metrics{
		appliedTxns: counterVec("hamal_applied_txns_total", "Source transactions applied to the sink, by kind (dml, ddl, barrier).", "kind"),
		appliedRows: counterVec("hamal_applied_rows_total", "Row changes (or commands) applied to the sink, by op (insert, update, delete, command) and table (the change's namespace).", "op", "table"),
		retries:     counterVec("hamal_retries_total", "Transient errors retried, by side (source, sink).", "side"),
		errors:      counterVec("hamal_errors_total", "Errors by class (transient, fatal).", "class"),
		resolved:    counterVec("hamal_errors_resolved_total", "Errors the channel was in that retrying resolved, by what recovered (sink: a retried batch applied, source: reconnected, open: the channel opened).", "what"),
		batchTxns: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hamal_batch_txns", Help: "Source transactions coalesced per target transaction.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hamal_batch_rows", Help: "Row changes per target transaction.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hamal_apply_duration_seconds", Help: "Time to apply one coalesced batch, retries included.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		busySeconds: counter("hamal_worker_busy_seconds_total", "Seconds workers spent applying batches, summed over workers; divide its rate by hamal_workers for the busy fraction."),
		heartbeats:  counter("hamal_source_heartbeats_total", "Source heartbeat rows (hamal.heartbeat) received."),
		loopDropped: counter("hamal_loop_dropped_txns_total", "Source transactions the loop guard dropped because the sink's site already has them (echoes)."),
	}
	// Series that exist before anything happens, so dashboards and alerts
	// see zeros rather than gaps.
	for _, k := range []event.Kind{event.KindDML, event.KindDDL, event.KindBarrier} {
		m.appliedTxns.WithLabelValues(k.String())
	}
	for _, side := range []string{"source", "sink"} {
		m.retries.WithLabelValues(side)
	}
	for _, class := range []string{"transient", "fatal"} {
		m.errors.WithLabelValues(class)
	}
	for _, what := range []string{"sink", "source", "open"} {
		m.resolved.WithLabelValues(what)
	}
	collectors := []prometheus.Collector{m.appliedTxns, m.appliedRows, m.retries, m.errors, m.resolved, m.batchTxns, m.batchRows,
		m.applySeconds, m.busySeconds, m.heartbeats, m.loopDropped, newChannelCollector(o, labels),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hamal_conflicts_total", ConstLabels: labels,
			Help: "Rows both sites changed before either change crossed, detected and resolved by the sink's policy (see the hamal.conflicts table)."},
			func() float64 { return float64(o.conflictCount()) }),
		newTableCollector(labels, o.foreignWrites, "hamal_foreign_writes_total",
			"Changes applied whose origin site is not their owner's home site (sink.ownership), per table; recorded in hamal.conflicts with kind foreign-write."),
		newTableCollector(labels, o.uniqueReplacements, "hamal_unique_replacements_total",
			"Target rows a one-way channel's REPLACE removed, per table, for holding a unique value of an incoming row with another row key (rows only the target had)."),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hamal_checkpoint_saves_total", ConstLabels: labels,
			Help: "Checkpoints persisted."},
			func() float64 { return float64(o.checkpointSaves()) })}
	if reg != nil {
		for _, col := range collectors {
			if err := reg.Register(col); err != nil {
				for _, done := range m.registered {
					reg.Unregister(done)
				}
				return nil, fmt.Errorf("register metrics for channel %s: %w", o.name, err)
			}
			m.registered = append(m.registered, col)
		}
		m.reg = reg
	}
	return m, nil
}

// unregister removes every collector newMetrics registered; safe to call
// more than once.
func (m *metrics) unregister() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, col := range m.registered {
		m.reg.Unregister(col)
	}
	m.registered = nil
}

// applied counts one applied batch.
func (m *metrics) applied(txns []*event.Txn, took time.Duration) {
	type opTable struct {
		op    event.Op
		table string
	}
	rows := 0
	var kinds [8]int
	byTable := make(map[opTable]int, 4)
	for _, t := range txns {
		if int(t.Kind) < len(kinds) {
			kinds[t.Kind]++
		}
		rows += len(t.Changes)
		for i := range t.Changes {
			byTable[opTable{t.Changes[i].Op, t.Changes[i].Namespace}]++
		}
	}
	for k, n := range kinds {
		if n > 0 {
			m.appliedTxns.WithLabelValues(event.Kind(k).String()).Add(float64(n))
		}
	}
	for k, n := range byTable {
		m.appliedRows.WithLabelValues(k.op.String(), k.table).Add(float64(n))
	}
	m.batchTxns.Observe(float64(len(txns)))
	m.batchRows.Observe(float64(rows))
	m.applySeconds.Observe(took.Seconds())
	m.busySeconds.Add(took.Seconds())
}

// channelCollector reports the gauges derived from the channel's state at
// scrape time.
type channelCollector struct {
	o      *observer
	labels prometheus.Labels
	descs  map[string]*prometheus.Desc
}

// gaugeHelp names and explains every gauge channelCollector reports.
var gaugeHelp = []struct{ name, help string }{
	{"hamal_replication_lag_seconds", "Seconds between now and the source commit time of the oldest transaction read but not yet applied; 0 when caught up; while the source is disconnected, the time since it was last heard."},
	{"hamal_source_heartbeat_lag_seconds", "Seconds between now and the write time of the newest source heartbeat (hamal.heartbeat) whose transaction and all before it were applied. Present once a heartbeat was applied (source.heartbeat.enabled)."},
	{"hamal_source_heartbeat_timestamp_seconds", "Unix time written into the newest applied source heartbeat row."},
	{"hamal_source_position_seq", "Seq of the last transaction read from the source (per process run, starts at 0 on each (re)connect)."},
	{"hamal_source_position_commit_timestamp_seconds", "Source commit time (Unix seconds) of the last transaction read."},
	{"hamal_checkpoint_position_seq", "Seq of the transaction the last persisted checkpoint names (per process run)."},
	{"hamal_checkpoint_commit_timestamp_seconds", "Source commit time (Unix seconds) of the transaction the last persisted checkpoint names."},
	{"hamal_checkpoint_age_seconds", "Seconds since the checkpoint was last persisted."},
	{"hamal_dag_inflight_txns", "Transactions read from the source and not yet applied."},
	{"hamal_dag_ready_txns", "Transactions whose predecessors are applied, waiting for a worker."},
	{"hamal_dag_inflight_bytes", "Bytes of the transactions in the DAG window."},
	{"hamal_workers", "Configured apply workers."},
	{"hamal_workers_busy", "Workers applying a batch right now."},
	{"hamal_source_connected", "1 while the source stream is open."},
	{"hamal_channel_up", "1 while the channel is running (not error, paused or stopped)."},
	{"hamal_channel_state", "1 for the channel's current state, 0 for the others (label state)."},
	// The relay log's gauges, present when the channel has relay: set.
	{"hamal_relay_bytes", "Bytes of the relay's segment files (records not applied, and applied ones until their segment is deleted)."},
	{"hamal_relay_max_bytes", "The relay's max_bytes: when the next record would pass it, reading the source waits."},
	{"hamal_relay_txns", "Transactions in the relay that the applier has not applied."},
	{"hamal_relay_segments", "Segment files of the relay."},
	{"hamal_relay_full", "1 while the relay is full and reading the source waits for the applier."},
	{"hamal_relay_read_seq", "Relay seq of the last transaction the relay read from the source."},
	{"hamal_relay_applied_seq", "Relay seq of the last transaction the applier's checkpoint names."},
	{"hamal_relay_read_commit_timestamp_seconds", "Source commit time (Unix seconds) of the last transaction the relay read."},
	{"hamal_relay_applied_commit_timestamp_seconds", "Source commit time (Unix seconds) of the last transaction the applier's checkpoint names."},
	{"hamal_relay_read_ahead_seconds", "Source commit time between the relay's read position and the applier's position."},
	{"hamal_relay_oldest_unapplied_age_seconds", "Now minus the source commit time of the oldest transaction in the relay not yet applied; 0 when none."},
	// The snapshot's gauges, present once a channel started with
	// source.start: snapshot began its copy.
	{"hamal_snapshot_done", "1 once the snapshot's copy is done and the stream runs from its position."},
	{"hamal_snapshot_tables", "Tables the snapshot copies."},
	{"hamal_snapshot_tables_done", "Tables the snapshot has copied completely."},
	{"hamal_snapshot_rows_copied", "Rows the snapshot has copied (in chunks the target holds)."},
	{"hamal_snapshot_rows_estimated", "Rows the snapshot is estimated to copy (the source's table row estimates, at least what was copied)."},
	{"hamal_snapshot_rows_per_second", "The snapshot's copy rate over the last ten seconds."},
	{"hamal_snapshot_eta_seconds", "Estimated seconds until the snapshot's copy is done; 0 when done or not yet known."},
}

func newChannelCollector(o *observer, labels prometheus.Labels) *channelCollector {
	cc := &channelCollector{o: o, labels: labels, descs: map[string]*prometheus.Desc{}}
	for _, g := range gaugeHelp {
		var variable []string
		if g.name == "hamal_channel_state" {
			variable = []string{"state"}
		}
		cc.descs[g.name] = prometheus.NewDesc(g.name, g.help, variable, labels)
	}
	return cc
}

func (cc *channelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range cc.descs {
		ch <- d
	}
}

func (cc *channelCollector) Collect(ch chan<- prometheus.Metric) {
	o := cc.o
	st := o.status()
	ops := o.opsSnapshot()
	gauge := func(name string, v float64, labelValues ...string) {
		ch <- prometheus.MustNewConstMetric(cc.descs[name], prometheus.GaugeValue, v, labelValues...)
	}
	gauge("hamal_replication_lag_seconds", st.LagSeconds)
	if !ops.heartbeat.IsZero() {
		gauge("hamal_source_heartbeat_lag_seconds", max(time.Since(ops.heartbeat).Seconds(), 0))
		gauge("hamal_source_heartbeat_timestamp_seconds", unixSeconds(ops.heartbeat))
	}
	gauge("hamal_source_position_seq", float64(ops.sourceSeq))
	gauge("hamal_source_position_commit_timestamp_seconds", unixSeconds(ops.sourceCommit))
	gauge("hamal_checkpoint_position_seq", float64(ops.checkpointSeq))
	gauge("hamal_checkpoint_commit_timestamp_seconds", unixSeconds(ops.checkpointCommit))
	gauge("hamal_checkpoint_age_seconds", o.checkpointAge().Seconds())
	gauge("hamal_dag_inflight_txns", float64(st.InFlight))
	gauge("hamal_dag_ready_txns", float64(ops.dag.Ready))
	gauge("hamal_dag_inflight_bytes", float64(ops.dag.Bytes))
	gauge("hamal_workers", float64(o.workers))
	gauge("hamal_workers_busy", float64(o.busyWorkers.Load()))
	gauge("hamal_source_connected", b2f(o.sourceConnected.Load()))
	gauge("hamal_channel_up", b2f(st.State == StateRunning))
	for _, s := range states {
		gauge("hamal_channel_state", b2f(st.State == s), string(s))
	}
	if s := st.Snapshot; s != nil && s.State != "preparing" {
		gauge("hamal_snapshot_done", b2f(s.State == "done"))
		gauge("hamal_snapshot_tables", float64(s.TablesTotal))
		gauge("hamal_snapshot_tables_done", float64(s.TablesDone))
		gauge("hamal_snapshot_rows_copied", float64(s.RowsCopied))
		gauge("hamal_snapshot_rows_estimated", float64(s.RowsEstimated))
		gauge("hamal_snapshot_rows_per_second", s.RowsPerSecond)
		gauge("hamal_snapshot_eta_seconds", s.ETASeconds)
	}
	if r := st.Relay; r != nil {
		gauge("hamal_relay_bytes", float64(r.Bytes))
		gauge("hamal_relay_max_bytes", float64(r.MaxBytes))
		gauge("hamal_relay_txns", float64(r.Txns))
		gauge("hamal_relay_segments", float64(r.Segments))
		gauge("hamal_relay_full", b2f(r.Full))
		gauge("hamal_relay_read_seq", float64(r.ReadSeq))
		gauge("hamal_relay_applied_seq", float64(r.AppliedSeq))
		gauge("hamal_relay_read_commit_timestamp_seconds", unixSeconds(r.ReadCommitTime))
		gauge("hamal_relay_applied_commit_timestamp_seconds", unixSeconds(r.AppliedCommitTime))
		gauge("hamal_relay_read_ahead_seconds", r.ReadAheadSeconds)
		gauge("hamal_relay_oldest_unapplied_age_seconds", r.OldestUnappliedSeconds)
	}
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// tableCollector exports a per-table counter of the sinks
// (hamal_foreign_writes_total, hamal_unique_replacements_total), one
// series per table that had any.
type tableCollector struct {
	counts func() map[string]uint64
	desc   *prometheus.Desc
}

func newTableCollector(labels prometheus.Labels, counts func() map[string]uint64, name, help string) *tableCollector {
	return &tableCollector{counts: counts, desc: prometheus.NewDesc(name, help, []string{"table"}, labels)}
}

// Describe implements prometheus.Collector.
func (c *tableCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *tableCollector) Collect(ch chan<- prometheus.Metric) {
	for t, n := range c.counts() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), t)
	}
}
