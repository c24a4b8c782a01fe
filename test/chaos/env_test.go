package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

// level is how much of the suite runs: HAMAL_CHAOS unset runs the default
// scenarios at short size (make test); "short" runs every scenario at short
// size; "long" every scenario at full size (make chaos).
func level() string { return os.Getenv("HAMAL_CHAOS") }

// long reports whether scenarios run at full size.
func long() bool { return level() == "long" }

// pick returns the short or the long value.
func pick[T any](short, full T) T {
	if long() {
		return full
	}
	return short
}

// gate skips with -short, and skips a scenario outside the default set
// unless HAMAL_CHAOS asks for every scenario.
func gate(t *testing.T, inDefault bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos: skipped with -short")
	}
	if !inDefault && level() == "" {
		t.Skip("chaos: runs in make chaos (HAMAL_CHAOS=long), or HAMAL_CHAOS=short for the short size")
	}
}

// probeSchema is the table recovery is measured with.
var probeSchema = []string{
	"CREATE TABLE app.chaos_probe (id INT AUTO_INCREMENT PRIMARY KEY, fault VARCHAR(64) NOT NULL, at DATETIME(6) NOT NULL)",
}

var proxies Proxies

type envOptions struct {
	// schema and seed run on both servers before hamal starts.
	schema []string
	// tables adds tables (name → ORDER BY) to the comparison.
	tables map[string]string
	// checkpointDir overrides the checkpoint directory.
	checkpointDir string
	srcArgs       []string
	// targetSetup runs on the target only, before hamal starts.
	targetSetup []string
}

// env is a source, a target, a link to each, and a hamal process
// replicating app.* through the links.
type env struct {
	src, dst         *harness.Server
	srcLink, dstLink *Link
	cfg              Config
	cfgPath          string
	hamal            *Hamal
	tables           map[string]string
	starts           int // hamal processes started
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{tables: map[string]string{"app.chaos_probe": "id"}}
	for k, v := range workload.Tables {
		e.tables[k] = v
	}
	for k, v := range o.tables {
		e.tables[k] = v
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.src = harness.MariaDB(t, harness.Options{ServerID: 1, Args: o.srcArgs}) }()
	go func() { defer wg.Done(); e.dst = harness.MariaDB(t, harness.Options{ServerID: 2}) }()
	wg.Wait()
	if e.src == nil || e.dst == nil {
		t.FailNow()
	}
	schema := append(append(append([]string{}, workload.Schema...), probeSchema...), o.schema...)
	e.src.MustExec(t, schema...)
	e.dst.MustExec(t, schema...)
	e.dst.MustExec(t, o.targetSetup...)
	var err error
	if e.srcLink, err = proxies.NewLink("source", e.src.Addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.srcLink.Close)
	if e.dstLink, err = proxies.NewLink("target", e.dst.Addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.dstLink.Close)
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cpDir := o.checkpointDir
	if cpDir == "" {
		cpDir = filepath.Join(dir, "state")
	}
	e.cfg = Config{Name: "chaos", SourceAddr: e.srcLink.Addr(), SinkAddr: e.dstLink.Addr(),
		CheckpointDir: cpDir, AdminAddr: fmt.Sprintf("127.0.0.1:%d", port)}
	e.cfgPath = filepath.Join(dir, "hamal.yaml")
	if err := e.cfg.Write(e.cfgPath); err != nil {
		t.Fatal(err)
	}
	e.startHamal(t)
	return e
}

// startHamal starts a hamal process and waits until its channel runs.
func (e *env) startHamal(t *testing.T) {
	t.Helper()
	h, err := StartHamal(hamalBin, e.cfgPath, e.cfg.AdminAddr)
	if err != nil {
		t.Fatal(err)
	}
	e.hamal = h
	e.starts++
	t.Cleanup(func() {
		if !h.Exited() {
			h.Kill()
		}
		if t.Failed() {
			t.Logf("hamal (pid %d) output:\n%s", h.Pid(), lastLines(h.Output(), 80))
		}
	})
	e.waitState(t, 60*time.Second, pipeline.StateRunning)
}

// waitState waits until /status shows state.
func (e *env) waitState(t *testing.T, timeout time.Duration, state pipeline.State) pipeline.Status {
	t.Helper()
	var last pipeline.Status
	var lastErr error
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if e.hamal.Exited() {
			t.Fatalf("hamal exited while waiting for state %s; output:\n%s", state, lastLines(e.hamal.Output(), 40))
		}
		st, err := e.hamal.Status()
		if err == nil && st.State == state {
			return st
		}
		last, lastErr = st, err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("hamal not in state %s within %s: last %+v (err %v)", state, timeout, last, lastErr)
	return last
}

// startLoad starts the steady workload on the source.
func (e *env) startLoad(t *testing.T, o LoadOptions) *Load {
	t.Helper()
	if o.Addr == "" {
		o.Addr = e.src.Addr
	}
	if o.Pause == 0 {
		o.Pause = 5 * time.Millisecond
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	l := StartLoad(o)
	t.Cleanup(func() { _ = l.Stop() })
	return l
}

// measureRecovery measures recovery after fault ended: it writes a probe row to
// src and waits until the row is on the target. It fails the test when hamal
// exited or does not bring the row over within timeout.
func (e *env) measureRecovery(t *testing.T, rep *Report, src *harness.Server, fault string, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	var id uint64
	err := harness.WaitFor(t.Context(), 60*time.Second, func() (bool, error) {
		c, err := src.Connect("")
		if err != nil {
			return false, err
		}
		defer c.Close()
		r, err := c.Execute(fmt.Sprintf("INSERT INTO app.chaos_probe (fault, at) VALUES ('%s', NOW(6))", fault))
		if err != nil {
			return false, err
		}
		id = r.InsertId
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s: write the probe row to the source: %v", fault, err)
	}
	err = harness.WaitFor(t.Context(), timeout, func() (bool, error) {
		if e.hamal.Exited() {
			return false, fmt.Errorf("hamal exited")
		}
		rows, err := e.dst.Query(fmt.Sprintf("SELECT COUNT(*) FROM app.chaos_probe WHERE id = %d", id))
		if err != nil {
			return false, err
		}
		return rows[0][0] == "1", nil
	})
	if err != nil {
		st, _ := e.hamal.Status()
		t.Fatalf("%s: hamal did not recover: the probe row written when the fault ended is not on the target (%v); status %+v", fault, err, st)
	}
	took := time.Since(start)
	rep.AddRecovery(fault, took)
	t.Logf("%s: recovered in %s", fault, took.Round(10*time.Millisecond))
}

// finish stops the load, waits until the target equals src and fills in
// and prints the report. Mismatches fail the test.
func (e *env) finish(t *testing.T, rep *Report, load *Load, src *harness.Server) {
	t.Helper()
	if load != nil {
		if err := load.Stop(); err != nil {
			t.Errorf("workload: %v", err)
		}
		rep.Txns += load.Committed.Load()
		if lost := load.Lost.Load(); lost > 0 {
			rep.Note("transactions cut off by a broken source connection (outcome unknown, compared as the source holds them): %d", lost)
		}
	}
	rep.Faults += e.srcLink.Faults.Load() + e.dstLink.Faults.Load()
	rows, diffs, err := WaitEqual(src, e.dst, e.tables, pick(3*time.Minute, 10*time.Minute))
	if err != nil {
		t.Fatalf("compare: %v", err)
	}
	rep.Rows, rep.Tables, rep.Mismatches = rows, len(e.tables), len(diffs)
	if m, err := e.hamal.Metrics(); err == nil {
		rep.Note("hamal (last process): errors transient=%.0f fatal=%.0f, retries source=%.0f sink=%.0f, goroutines=%.0f; processes started=%d",
			m.Sum("hamal_errors_total", `class="transient"`), m.Sum("hamal_errors_total", `class="fatal"`),
			m.Sum("hamal_retries_total", `side="source"`), m.Sum("hamal_retries_total", `side="sink"`),
			m.Sum("go_goroutines"), e.starts)
	}
	if mem, err := e.hamal.Memory(); err == nil {
		rep.Note("hamal memory: rss=%s peak_rss=%s", mib(mem.RSS), mib(mem.PeakRSS))
	}
	t.Log("\n" + rep.String())
	for _, d := range diffs {
		t.Errorf("mismatch: %s", d)
	}
	// A batch retrying a deadlock between hamal's own workers shows
	// "retrying" for a moment: wait for running rather than sample once.
	var st pipeline.Status
	if err := harness.WaitFor(t.Context(), 30*time.Second, func() (bool, error) {
		var err error
		st, err = e.hamal.Status()
		return err == nil && st.State == pipeline.StateRunning, err
	}); err != nil {
		t.Errorf("hamal final state %q (%v), want running; last error %q", st.State, err, st.LastError)
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

// hold keeps a fault in place for d, failing early if hamal exited.
func (e *env) hold(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if e.hamal.Exited() {
			t.Fatalf("hamal exited during a fault; output:\n%s", lastLines(e.hamal.Output(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metric sums a metric of hamal's /metrics over the series whose labels
// contain labels (0 when absent).
func (e *env) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	m, err := e.hamal.Metrics()
	if err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	return m.Sum(name, labels...)
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
