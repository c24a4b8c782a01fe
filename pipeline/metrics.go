package pipeline

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one channel's Prometheus series, all labelled channel=<name>.
type metrics struct {
	appliedTxns  prometheus.Counter
	appliedRows  prometheus.Counter
	retries      *prometheus.CounterVec
	errors       *prometheus.CounterVec
	batchTxns    prometheus.Histogram
	applySeconds prometheus.Histogram
	checkpoints  prometheus.Counter
	loopDropped  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, c *Channel) (*metrics, error) {
	labels := prometheus.Labels{"channel": c.opts.Name}
	f := func(opts prometheus.Opts) prometheus.Opts { opts.ConstLabels = labels; return opts }
	m := &metrics{
		appliedTxns: prometheus.NewCounter(prometheus.CounterOpts(f(prometheus.Opts{
			Name: "hamal_applied_txns_total", Help: "Source transactions applied to the sink."}))),
		appliedRows: prometheus.NewCounter(prometheus.CounterOpts(f(prometheus.Opts{
			Name: "hamal_applied_rows_total", Help: "Row changes applied to the sink."}))),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts(f(prometheus.Opts{
			Name: "hamal_retries_total", Help: "Transient errors retried, by side (source, sink)."})), []string{"side"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts(f(prometheus.Opts{
			Name: "hamal_errors_total", Help: "Errors by class (transient, fatal)."})), []string{"class"}),
		batchTxns: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hamal_batch_txns", Help: "Source transactions coalesced per target transaction.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hamal_apply_duration_seconds", Help: "Time to apply one coalesced batch, retries included.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts(f(prometheus.Opts{
			Name: "hamal_checkpoint_saves_total", Help: "Checkpoints persisted."}))),
		loopDropped: prometheus.NewCounter(prometheus.CounterOpts(f(prometheus.Opts{
			Name: "hamal_loop_dropped_txns_total", Help: "Source transactions the loop guard dropped because the sink's site already has them (echoes)."}))),
	}
	gauge := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, fn)
	}
	collectors := []prometheus.Collector{m.appliedTxns, m.appliedRows, m.retries, m.errors, m.batchTxns, m.applySeconds, m.checkpoints, m.loopDropped,
		gauge("hamal_replication_lag_seconds", "Seconds between now and the source commit time of the oldest transaction read but not yet applied; 0 when caught up.", func() float64 { return c.Status().LagSeconds }),
		gauge("hamal_dag_inflight_txns", "Transactions read from the source and not yet applied.", func() float64 { return float64(c.Status().InFlight) }),
		gauge("hamal_checkpoint_age_seconds", "Seconds since the checkpoint was last persisted.", func() float64 { return c.checkpointAge().Seconds() }),
		gauge("hamal_source_connected", "1 while the source stream is open.", func() float64 { return b2f(c.sourceConnected.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hamal_conflicts_total", ConstLabels: labels,
			Help: "Rows both sites changed before either change crossed, detected and resolved by the sink's policy (see the hamal.conflicts table)."},
			func() float64 { return float64(c.conflictCount()) }),
		gauge("hamal_channel_up", "1 while the channel is running (not error, paused or stopped).", func() float64 { return b2f(c.Status().State == StateRunning) }),
	}
	if reg != nil {
		for _, col := range collectors {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("register metrics for channel %s: %w", c.opts.Name, err)
			}
		}
	}
	return m, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
