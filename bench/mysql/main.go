package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/relay"
	"github.com/hamal-replication/hamal/test/chaos"
	"github.com/hamal-replication/hamal/test/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// workload is one workload written to the source, between two GTID
// positions.
type workload struct {
	name, table string
	initRows    int    // rows loaded (not logged) before the workload, on the source and every target
	tsv         string // those rows, for LOAD DATA
	start, end  string // source GTID positions before and after
	txns        uint64
	rows        int64 // row changes, as the decoder counted them
	binlogBytes int64
	want        tableState
}

type bench struct {
	ctx      context.Context
	scale    float64
	dir      string
	srv      *servers
	src      *harness.Server
	proxies  *chaos.Proxies
	out      [][]string
	loopback map[string]float64 // "W2/hamal" → txn/s on loopback
	profile  string
	failed   bool
	// rounds is how many times each timed contender runs, in alternation
	// with the others (BENCH_ROUNDS); each reports its median.
	rounds int
	// linkRTTs are the SELECT 1 round trips timed through the link in
	// the current link section (probeLink).
	linkRTTs []time.Duration
}

const longWait = 2 * time.Hour

func scaled(n int, scale float64) int { return max(1, int(float64(n)*scale)) }

func run() error {
	scale := 1.0
	if v := os.Getenv("BENCH_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return fmt.Errorf("BENCH_SCALE=%q: want a positive number such as 1 or 0.05", v)
		}
		scale = f
	}
	// This machine's speed drifts several-fold within minutes (see
	// docs/performance.md), so below the full size every contender runs
	// three times, in alternation with the others, and reports its median.
	rounds := 1
	if scale < 1 {
		rounds = 3
	}
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("BENCH_ROUNDS=%q: want a whole number of at least 1", v)
		}
		rounds = n
	}
	sections := map[string]bool{}
	all := []string{"catchup", "raw", "decode", "memory", "link", "lag"}
	if v := os.Getenv("BENCH_SECTIONS"); v != "" {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if !strings.Contains(","+strings.Join(all, ",")+",", ","+s+",") {
				return fmt.Errorf("BENCH_SECTIONS: unknown section %q (have %s)", s, strings.Join(all, ","))
			}
			sections[s] = true
		}
	} else {
		for _, s := range all {
			sections[s] = true
		}
	}
	// BENCH_WORKLOADS narrows the catch-up and decode sections to some of
	// W1, W2, W3 (the others are then not written either).
	workloads := map[string]bool{"W1": true, "W2": true, "W3": true}
	if v := os.Getenv("BENCH_WORKLOADS"); v != "" {
		workloads = map[string]bool{}
		for _, s := range strings.Split(v, ",") {
			s = strings.ToUpper(strings.TrimSpace(s))
			if s != "W1" && s != "W2" && s != "W3" {
				return fmt.Errorf("BENCH_WORKLOADS: unknown workload %q (have W1,W2,W3)", s)
			}
			workloads[s] = true
		}
	}
	parent := os.Getenv("BENCH_DIR")
	if parent == "" {
		parent = os.TempDir()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	srv, err := newServers(parent)
	if err != nil {
		return err
	}
	defer srv.cleanup()
	b := &bench{ctx: ctx, scale: scale, dir: srv.dir, srv: srv, proxies: &chaos.Proxies{},
		loopback: map[string]float64{}, profile: os.Getenv("BENCH_CPUPROFILE"), rounds: rounds}
	progress("BENCH_SCALE=%g, BENCH_ROUNDS=%d, data under %s, load average %s", scale, rounds, srv.dir, loadavg())
	if b.src, err = srv.start(sourceArgs); err != nil {
		return err
	}
	if err := b.src.Exec("CREATE DATABASE bench"); err != nil {
		return err
	}

	// The workloads are written once, before anything replicates; each
	// contender then reads them from their start position.
	w1 := &workload{name: "W1", table: "w1"}
	w2 := &workload{name: "W2", table: "w2", initRows: scaled(1_000_000, scale)}
	w3 := &workload{name: "W3", table: "w3", initRows: w2.initRows}
	n := scaled(200_000, scale)
	if err := b.write(w1, func() error { return writeW1(ctx, b.src, "w1", n) }); err != nil {
		return err
	}
	if sections["link"] || (sections["catchup"] || sections["decode"]) && workloads["W2"] {
		if err := b.write(w2, func() error { return writeW2(ctx, b.src, "w2", n, w2.initRows, false) }); err != nil {
			return err
		}
	}
	if (sections["catchup"] || sections["decode"]) && workloads["W3"] {
		if err := b.write(w3, func() error { return writeW2(ctx, b.src, "w3", n, w3.initRows, true) }); err != nil {
			return err
		}
	}

	var chosen []*workload
	for _, w := range []*workload{w1, w2, w3} {
		if workloads[w.name] {
			chosen = append(chosen, w)
		}
	}
	if sections["catchup"] {
		for _, w := range chosen {
			b.section("catch-up", func() error { return b.catchup(w) })
		}
	}
	if sections["raw"] {
		b.section("raw limit", func() error { return b.raw(w1) })
	}
	if sections["decode"] {
		for _, w := range chosen {
			b.section("decode", func() error { return b.decodeRow(w) })
		}
	}
	if sections["memory"] {
		b.section("memory", func() error { return b.memory(w2.initRows) })
	}
	if sections["link"] {
		b.section("30 ms link", func() error { return b.link(w2) })
	}
	if sections["lag"] {
		b.section("lag", b.lag)
	}
	b.print()
	if b.failed {
		return errors.New("some sections failed: see the table")
	}
	return nil
}

// section runs one part of the bench; a failure is reported in the table
// (never as a figure) and the bench goes on with the next part.
func (b *bench) section(name string, run func() error) {
	if b.ctx.Err() != nil {
		return
	}
	if err := run(); err != nil {
		progress("%s failed: %v", name, err)
		b.add(name, "", "", "", "", "FAILED: "+err.Error())
		b.failed = true
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// add records a table row and shows it at once, so a long run that is cut
// short still leaves its figures on stderr.
func (b *bench) add(cols ...string) {
	b.out = append(b.out, cols)
	progress("%s", strings.Join(cols, " | "))
}

func numCPU() int { return runtime.NumCPU() }

func (b *bench) print() {
	fmt.Printf("\nHamal MySQL benchmark — BENCH_SCALE=%g, %d CPUs, load average %s, %s\n\n",
		b.scale, numCPU(), loadavg(), time.Now().UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "section\tcase\tcontender\ttxn/s\trows/s\tnote")
	for _, r := range b.out {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// write prepares the workload's table on the source, writes the workload
// and records its positions, size and final content.
func (b *bench) write(w *workload, gen func() error) error {
	if err := b.src.Exec(createTable(w.table)); err != nil {
		return err
	}
	if w.initRows > 0 {
		w.tsv = filepath.Join(b.dir, w.table+".tsv")
		if err := writeTSV(w.tsv, w.initRows); err != nil {
			return err
		}
		if err := loadData(b.src, w.table, w.tsv, false); err != nil {
			return err
		}
	}
	var err error
	if w.start, err = b.src.GTIDPos(); err != nil {
		return err
	}
	before, err := binlogBytes(b.src)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := gen(); err != nil {
		return fmt.Errorf("write %s: %w", w.name, err)
	}
	if w.end, err = b.src.GTIDPos(); err != nil {
		return err
	}
	after, err := binlogBytes(b.src)
	if err != nil {
		return err
	}
	w.binlogBytes = after - before
	w.txns = gtidSeq(w.end, 1) - gtidSeq(w.start, 1)
	if w.want, err = state(b.src, w.table); err != nil {
		return err
	}
	// The decoder counts the row changes, which the catch-up rates use.
	d, err := decode(b.ctx, b.src.Addr, w.start, w.txns)
	if err != nil {
		return err
	}
	w.rows = d.rows
	progress("%s written: %d txns, %d row changes, %.1f MB of binlog in %s", w.name, w.txns, w.rows,
		float64(w.binlogBytes)/1e6, time.Since(t0).Round(time.Millisecond))
	return nil
}

// target starts a fresh target holding the workload's initial rows.
func (b *bench) target(w *workload) (*harness.Server, error) {
	t, err := b.srv.target(w.table)
	if err != nil {
		return nil, err
	}
	if w.tsv != "" {
		if err := loadData(t, w.table, w.tsv, false); err != nil {
			b.srv.remove(t)
			return nil, err
		}
	}
	return t, nil
}

// contenders of the catch-up race.
const (
	hamal        = "hamal"
	nativeOpt    = "native optimistic x4"
	nativeSerial = "native serial"
	// hamalRelay is hamal with the relay log (config defaults: 1 GiB,
	// batch fsync) between the source and the DAG.
	hamalRelay = "hamal + relay"
)

// applied is what one contender's run took: wall time, and the CPU time
// of the target, the source and (for hamal) the bench process, which is
// hamal, over the same span.
type applied struct {
	elapsed                     time.Duration
	targetCPU, sourceCPU, hamal time.Duration
}

// applyOnce times one contender applying w into a fresh target, over a
// 30 ms link when link is set, and checks the result.
func (b *bench) applyOnce(w *workload, contender string, link bool) (applied, error) {
	var run applied
	t, err := b.target(w)
	if err != nil {
		return run, err
	}
	// The clock and the CPU times are read just before the contender
	// starts and right after the last transaction was applied.
	var start time.Time
	var target0, source0, self0 time.Duration
	measure := func() {
		target0, _ = t.CPUTime()
		source0, _ = b.src.CPUTime()
		self0 = cpuTime()
		start = time.Now()
	}
	stop := func() {
		run.elapsed = time.Since(start)
		tc, _ := t.CPUTime()
		sc, _ := b.src.CPUTime()
		run.targetCPU, run.sourceCPU = tc-target0, sc-source0
		if isHamal(contender) {
			run.hamal = cpuTime() - self0
		}
	}
	defer b.srv.remove(t)
	upstream := t.Addr // hamal's side of the link is the target
	if !isHamal(contender) {
		upstream = b.src.Addr // the native replica's is its primary
	}
	addr := upstream
	if link {
		l, err := b.proxies.NewLink("link-"+w.table, upstream)
		if err != nil {
			return run, err
		}
		defer l.Close()
		if _, err := l.Latency(15); err != nil { // each way: 30 ms round trip
			return run, err
		}
		addr = l.Addr()
		if err := b.probeLink(addr); err != nil {
			return run, err
		}
	}
	switch {
	case isHamal(contender):
		stopProfile := func() {}
		if !link && contender == hamal {
			if stopProfile, err = b.startProfile(strings.ToLower(w.name)); err != nil {
				return run, err
			}
		}
		measure()
		var h *hamalRun
		var rl *relay.Relay
		if contender == hamalRelay {
			h, rl, err = startHamalRelay(b.dir, b.src.Addr, addr, w.start)
		} else {
			var tune []func(*pipeline.Options)
			if n := sweepWorkers(contender); n > 0 {
				tune = append(tune, withWorkers(n))
			}
			h, err = startHamal(b.dir, b.src.Addr, addr, w.start, tune...)
		}
		if err != nil {
			return run, err
		}
		err = h.waitApplied(w.txns, longWait)
		stop()
		if err == nil {
			progress("%s %s: %s", w.name, contender, h.stats(run.elapsed))
		}
		stopProfile()
		h.halt()
		if rl != nil {
			rl.Close()
		}
		_ = os.RemoveAll(h.dir)
		if err != nil {
			return run, fmt.Errorf("%s %s: %w", w.name, contender, err)
		}
	default:
		threads := 4
		if contender == nativeSerial {
			threads = 0
		}
		measure()
		if err := native(t, addr, w.start, w.end, threads); err != nil {
			return run, err
		}
		err := waitNative(t, w.end, longWait)
		stop()
		stopNative(t)
		if err != nil {
			return run, fmt.Errorf("%s %s: %w", w.name, contender, err)
		}
	}
	if err := verify(t, w.table, w.want, w.name+" "+contender); err != nil {
		return run, err
	}
	return run, nil
}

// isHamal tells hamal's contenders from the native replicas.
func isHamal(c string) bool { return c == hamal || c == hamalRelay || sweepWorkers(c) > 0 }

// sweepWorkers is the worker count of a BENCH_WORKERS sweep contender
// ("hamal w=8"), 0 for any other.
func sweepWorkers(c string) int {
	rest, ok := strings.CutPrefix(c, hamal+" w=")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(rest)
	return n
}

// contenders are the catch-up contenders; BENCH_CONTENDERS=hamal runs
// hamal alone (for profiling).
func (b *bench) contenders() []string {
	if v := os.Getenv("BENCH_WORKERS"); strings.Contains(v, ",") {
		// A sweep: one hamal contender per worker count, against native
		// optimistic unless BENCH_CONTENDERS=hamal.
		var cs []string
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				cs = append(cs, hamal+" w="+strconv.Itoa(n))
			}
		}
		if os.Getenv("BENCH_CONTENDERS") != "hamal" {
			cs = append(cs, nativeOpt)
		}
		return cs
	}
	switch os.Getenv("BENCH_CONTENDERS") {
	case "hamal":
		return []string{hamal}
	case "relay":
		return []string{hamal, hamalRelay}
	}
	return []string{hamal, hamalRelay, nativeOpt, nativeSerial}
}

func rate(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }

func fmtRate(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) }

func (b *bench) catchup(w *workload) error {
	rates := map[string][]float64{}
	cpu := map[string][]applied{}
	for r := 1; r <= b.rounds; r++ {
		for _, c := range b.contenders() {
			if c == nativeSerial && r > 1 {
				continue // the slowest, and no target refers to it: once
			}
			progress("catch-up %s: %s (round %d of %d)", w.name, c, r, b.rounds)
			run, err := b.applyOnce(w, c, false)
			if err != nil {
				return err
			}
			rates[c] = append(rates[c], rate(int64(w.txns), run.elapsed))
			cpu[c] = append(cpu[c], run)
			progress("%s %s: %s", w.name, c, cpuNote(run, w.txns))
		}
		if h, n := rates[hamal], rates[nativeOpt]; len(h) == r && len(n) == r {
			progress("catch-up %s round %d: hamal / native optimistic = %.2f", w.name, r, h[r-1]/n[r-1])
		}
	}
	med := map[string]float64{}
	for c, rs := range rates {
		med[c] = median(rs)
		b.loopback[w.name+"/"+c] = med[c]
	}
	for _, c := range b.contenders() {
		var notes []string
		if (c == hamal || sweepWorkers(c) > 0) && med[nativeOpt] > 0 {
			notes = append(notes, fmt.Sprintf("%.2fx native optimistic", med[c]/med[nativeOpt]))
		}
		if c == hamalRelay && med[hamal] > 0 {
			notes = append(notes, fmt.Sprintf("relay on/off %.2f", med[hamalRelay]/med[hamal]))
		}
		notes = append(notes, spread(rates[c])...)
		notes = append(notes, cpuNote(medianCPU(cpu[c]), w.txns))
		b.add("catch-up", fmt.Sprintf("%s (%d txns)", w.name, w.txns), c, fmtRate(med[c]),
			fmtRate(med[c]*float64(w.rows)/float64(w.txns)), strings.Join(notes, "; "))
	}
	return nil
}

// cpuNote gives the CPU time per source transaction of a run: the
// target's (what a contender makes the target do, which the contenders
// share the machine's cores with), hamal's own, and the source's (serving
// the binlog).
func cpuNote(run applied, txns uint64) string {
	per := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/float64(txns), 'f', 1, 64)
	}
	note := "CPU µs/txn: target " + per(run.targetCPU)
	if run.hamal > 0 {
		note += ", hamal " + per(run.hamal)
	}
	return note + ", source " + per(run.sourceCPU)
}

// medianCPU is the median of each CPU figure over runs.
func medianCPU(runs []applied) applied {
	pick := func(f func(applied) time.Duration) time.Duration {
		var v []float64
		for _, r := range runs {
			v = append(v, float64(f(r)))
		}
		return time.Duration(median(v))
	}
	return applied{
		targetCPU: pick(func(r applied) time.Duration { return r.targetCPU }),
		sourceCPU: pick(func(r applied) time.Duration { return r.sourceCPU }),
		hamal:     pick(func(r applied) time.Duration { return r.hamal }),
	}
}

// median of rates (the mean of the middle two for an even count).
func median(rates []float64) float64 {
	if len(rates) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(rates))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// spread notes the range a median was taken over, when there was more
// than one round.
func spread(rates []float64) []string {
	if len(rates) < 2 {
		return nil
	}
	return []string{fmt.Sprintf("median of %d, range %s–%s", len(rates), fmtRate(slices.Min(rates)), fmtRate(slices.Max(rates)))}
}

// raw times the two fastest ways to load W1's rows into a fresh target.
