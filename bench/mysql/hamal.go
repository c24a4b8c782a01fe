package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	enginemysql "github.com/hamal-replication/hamal/engine/mysql"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/relay"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
	"github.com/hamal-replication/hamal/test/harness"
)

// hamalRun is one in-process channel, wired as `hamal run` wires it, with
// the config's defaults (16 workers, 256-Txn batches, 20,000-Txn window,
// 5 ms batch linger).
type hamalRun struct {
	ch     *pipeline.Channel
	store  *checkpoint.Store
	cancel context.CancelFunc
	done   chan error
	dir    string
	reg    *prometheus.Registry
	// workers is the channel's worker count (BENCH_WORKERS, else the
	// config default).
	workers int
	// Sampled by waitApplied after the first Txn was applied: where the
	// window stood (Txns in flight, ready, workers busy), summed over
	// samples; and how long the start (connect, preflight, first batch)
	// took.
	samples, inFlight, ready, busy int
	firstApplied                   time.Duration
}

const benchServerID = 4242

func startHamal(parent, sourceAddr, sinkAddr, start string, tune ...func(*pipeline.Options)) (*hamalRun, error) {
	dir, err := os.MkdirTemp(parent, "checkpoint-")
	if err != nil {
		return nil, err
	}
	return openHamal(dir, benchSource(sourceAddr, benchServerID, start), sinkAddr, tune...)
}

// startHamalRelay is startHamal with the relay log between the source and
// the DAG, in the checkpoint directory; close the relay after halting the
// channel.
func startHamalRelay(parent, sourceAddr, sinkAddr, start string) (*hamalRun, *relay.Relay, error) {
	dir, err := os.MkdirTemp(parent, "checkpoint-")
	if err != nil {
		return nil, nil, err
	}
	var rl *relay.Relay
	var rerr error
	h, err := openHamal(dir, benchSource(sourceAddr, benchServerID, start), sinkAddr, func(o *pipeline.Options) {
		rl, rerr = relay.Open(relay.Options{Channel: o.Name, Dir: filepath.Join(dir, "relay"), MaxBytes: config.DefaultRelayMaxBytes,
			MaxAge: config.DefaultRelayMaxAge, Fsync: relay.Fsync(config.DefaultRelayFsync), Store: o.Store, Open: o.OpenSource,
			Logger: o.Logger})
		if rerr == nil {
			o.OpenSource, o.Relay = rl.OpenSource, rl
		}
	})
	if rerr != nil {
		if h != nil {
			h.stop()
		}
		return nil, nil, rerr
	}
	if err != nil {
		rl.Close()
		return nil, nil, err
	}
	return h, rl, nil
}

// benchSource is the MySQL driver's source block of the bench's channels:
// root on addr, the bench schema, registering as serverID.
func benchSource(addr string, serverID uint32, start string) *enginemysql.SourceConfig {
	return &enginemysql.SourceConfig{Conn: enginemysql.Conn{Addr: addr, User: "root"}, ServerID: serverID,
		Start: start, Tables: []string{"bench.*"}}
}

// validated runs a block's Validate, as loading a config does, so the
// block has its defaults.
func validated(b config.Block, path string) error {
	s := config.NewScope(path, "")
	b.Validate(s)
	return s.Err()
}

// openHamal runs a channel with its checkpoint in dir (resuming from it
// when there is one). Its source and sink are built by the MySQL driver,
// as `hamal run` builds them.
func openHamal(dir string, src *enginemysql.SourceConfig, sinkAddr string, tune ...func(*pipeline.Options)) (*hamalRun, error) {
	snk := &enginemysql.SinkConfig{Conn: enginemysql.Conn{Addr: sinkAddr, User: "root"}}
	if err := errors.Join(validated(src, "source"), validated(snk, "sink")); err != nil {
		return nil, err
	}
	store, err := checkpoint.Open(dir)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	var opts pipeline.Options
	opts = pipeline.Options{
		Name: "bench",
		OpenSource: func(ctx context.Context, resume event.Position) (source.Source, error) {
			return src.Open(ctx, engine.Env{Channel: "bench", Logger: log}, resume)
		},
		OpenSink: func(ctx context.Context) (sink.Sink, error) {
			return snk.Open(ctx, engine.Env{Channel: "bench", Workers: opts.Workers, Logger: log})
		},
		Store:       store,
		ExitOnError: true,
		Logger:      log,
		Registerer:  reg,
	}
	opts.Workers, opts.BatchTxns = envInt("BENCH_WORKERS"), envInt("BENCH_BATCH_TXNS")
	// The window and linger of `hamal run` with the config's defaults;
	// BENCH_LINGER overrides apply.batch_linger ("0s": never wait).
	opts.Window = config.Apply{}.Window()
	if d, err := time.ParseDuration(os.Getenv("BENCH_LINGER")); err == nil {
		opts.Window.Linger = d
	}
	for _, f := range tune {
		f(&opts)
	}
	ch, err := pipeline.New(opts)
	if err != nil {
		store.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &hamalRun{ch: ch, store: store, cancel: cancel, done: make(chan error, 1), dir: dir, reg: reg, workers: opts.Workers}
	if h.workers == 0 {
		h.workers = config.DefaultWorkers
	}
	go func() { h.done <- ch.Run(ctx) }()
	return h, nil
}

// withWorkers sets the channel's and the sink's worker count.
func withWorkers(n int) func(*pipeline.Options) {
	return func(o *pipeline.Options) { o.Workers = n }
}

// envInt reads an optional integer knob; 0 (the pipeline's default) when
// unset or not a number.
func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

// waitApplied blocks until the channel has applied n Txns.
func (h *hamalRun) waitApplied(n uint64, timeout time.Duration) error {
	start := time.Now()
	deadline := start.Add(timeout)
	for time.Now().Before(deadline) {
		st := h.ch.Status()
		if st.AppliedTxns >= n {
			return nil
		}
		if st.AppliedTxns > 0 {
			if h.firstApplied == 0 {
				h.firstApplied = time.Since(start)
			}
			h.samples++
			h.inFlight += st.InFlight
			h.ready += st.DAGReady
			h.busy += st.WorkersBusy
		}
		select {
		case err := <-h.done:
			h.done <- err
			return fmt.Errorf("hamal stopped after %d of %d Txns: %v", h.ch.Status().AppliedTxns, n, err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	st := h.ch.Status()
	return fmt.Errorf("hamal applied %d of %d Txns within %s (state %s, last error %q)", st.AppliedTxns, n, timeout, st.State, st.LastError)
}

// stats summarises where the channel's time went, from its own metrics:
// how many source transactions each target transaction coalesced, how
// long a batch took to apply, and how busy the workers were.
func (h *hamalRun) stats(elapsed time.Duration) string {
	mfs, err := h.reg.Gather()
	if err != nil {
		return "metrics: " + err.Error()
	}
	var batches, txns, applySum, busy, conflicts float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "hamal_batch_txns":
				batches, txns = float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
			case "hamal_apply_duration_seconds":
				applySum = m.GetHistogram().GetSampleSum()
			case "hamal_worker_busy_seconds_total":
				busy = m.GetCounter().GetValue()
			case "hamal_conflicts_total":
				conflicts = m.GetCounter().GetValue()
			}
		}
	}
	if batches == 0 {
		return "no batch applied"
	}
	out := fmt.Sprintf("%.0f batches, %.1f txns/batch, %.1f ms/batch apply, workers %.0f%% busy (%d), %.0f conflicts; first batch applied after %d ms",
		batches, txns/batches, 1000*applySum/batches, 100*busy/elapsed.Seconds()/float64(h.workers), h.workers, conflicts, h.firstApplied.Milliseconds())
	if h.samples > 0 {
		n := float64(h.samples)
		out += fmt.Sprintf("; then on average %.0f Txns in flight, %.0f ready, %.1f workers busy", float64(h.inFlight)/n, float64(h.ready)/n, float64(h.busy)/n)
	}
	return out
}

func (h *hamalRun) stop() {
	h.halt()
	_ = os.RemoveAll(h.dir)
}

// halt stops the channel (it persists its checkpoint) and keeps the
// checkpoint directory.
func (h *hamalRun) halt() {
	h.cancel()
	<-h.done
	h.store.Close()
}

// hamalProcess is the real binary as a child process, for its RSS.
type hamalProcess struct {
	cmd    *exec.Cmd
	exited <-chan error
	dir    string
}

func buildHamal(dir string) (string, error) {
	bin := filepath.Join(dir, "hamal")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/hamal")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build hamal (run the bench from the repository root): %w\n%s", err, out)
	}
	return bin, nil
}

func startHamalProcess(bin, parent, sourceAddr, sinkAddr, start string) (*hamalProcess, error) {
	dir, err := os.MkdirTemp(parent, "hamal-")
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`name: bench
source:
  kind: mysql
  addr: %s
  user: root
  password: ""
  server_id: %d
  start: %q
  tables: ["bench.*"]
sink:
  kind: mysql
  addr: %s
  user: root
  password: ""
checkpoint:
  dir: %s
admin:
  listen: "off"
log:
  level: warn
`, sourceAddr, benchServerID, start, sinkAddr, filepath.Join(dir, "checkpoint"))
	path := filepath.Join(dir, "hamal.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", path, "--exit-on-error")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	exited, err := harness.Spawn(cmd)
	if err != nil {
		return nil, err
	}
	return &hamalProcess{cmd: cmd, exited: exited, dir: dir}, nil
}

// peakRSS returns the process's VmHWM (peak resident set) in bytes.
func (p *hamalProcess) peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
}

// waitRows waits until bench.table on target has n rows, failing if the
// process exits first.
func (p *hamalProcess) waitRows(target *harness.Server, table string, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			return fmt.Errorf("hamal exited before applying bench.%s: %v", table, err)
		case <-time.After(200 * time.Millisecond):
		}
		rows, err := target.Query("SELECT COUNT(*) FROM bench." + table)
		if err == nil && rows[0][0] == strconv.FormatInt(n, 10) {
			return nil
		}
	}
	return fmt.Errorf("bench.%s did not reach %d rows on the target within %s", table, n, timeout)
}

func (p *hamalProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	_ = os.RemoveAll(p.dir)
}
