// Command snapshot measures a new channel's snapshot (`hamal run` with
// source.start: snapshot, the real binary as a child process) against the
// two ways an operator seeds a target by hand, into the same target in the
// same run: LOAD DATA LOCAL of the tables' rows (dumped to files first, not
// timed) and `mariadb-dump --single-transaction | mariadb`. Two datasets,
// made by sysbench's own prepare: one table of 1M rows, and sysbench's four
// tables of 1M rows.
//
//	go run ./bench/snapshot          # from the repository root
//
// For each contender it prints rows/s, the ratio to LOAD DATA (one stream,
// and one stream per table for the four tables) and to dump-and-load, the
// load average when it finished, and hamal's peak RSS (VmHWM). hamal is
// timed from the snapshot position to the end of the copy (its /status:
// snapshot.started_at to finished_at), the others from start to exit.
// hamal also runs once against the same target with local_infile off,
// where it writes REPLACE … VALUES instead of LOAD DATA LOCAL, to show what
// the write path is worth. Every result is compared with the source (row
// count and CHECKSUM TABLE per table) before its figure is reported.
//
// Environment: BENCH_SCALE (default 1.0: 1M rows per table; 0.02 for a quick
// run), BENCH_DIR (where the data directories go; default the system temp
// directory, a real disk, since the target runs durable: flush at every
// commit, sync_binlog=1, binlog on), BENCH_ROUNDS (rounds of every
// contender, in alternation, medians reported; default 1 at full scale,
// else 3), BENCH_WORKERS and BENCH_CHUNK_ROWS (source.snapshot.workers and
// chunk_rows; default 4 and 10000), BENCH_DATASETS (one, four or both).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
)

// targetArgs: the target commits durably, logs its binlog and has
// MariaDB's default redo log, as bench/mysql's targets.
var targetArgs = []string{"--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1", "--log-slave-updates=ON",
	"--innodb-buffer-pool-size=1G", "--max-allowed-packet=64M", "--innodb-log-file-size=96M", "--local-infile=1"}

// sourceArgs: the source only has to hold the rows.
var sourceArgs = []string{"--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0", "--innodb-buffer-pool-size=1G", "--max-allowed-packet=64M"}

type dataset struct {
	name   string // also the database
	tables int
	rows   int // per table
}

type result struct {
	dataset, contender string
	rows               int64
	took               time.Duration
	load               string
	rss                int64 // hamal only
	// CPU time the run cost the target server, the source server and the
	// client (hamal; mariadb-dump and mariadb; nothing measurable for LOAD
	// DATA, whose client is this program streaming a file).
	targetCPU, sourceCPU, clientCPU time.Duration
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/snapshot:", err)
		os.Exit(1)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func run() error {
	scale := 1.0
	if v, err := strconv.ParseFloat(os.Getenv("BENCH_SCALE"), 64); err == nil && v > 0 {
		scale = v
	}
	rounds := 1
	if scale < 1 {
		rounds = 3
	}
	rounds = envInt("BENCH_ROUNDS", rounds)
	workers, chunk := envInt("BENCH_WORKERS", 4), envInt("BENCH_CHUNK_ROWS", 10000)
	rows := max(int(1_000_000*scale), 1000)
	var datasets []dataset
	for _, d := range []dataset{{"one", 1, rows}, {"four", 4, rows}} {
		if want := os.Getenv("BENCH_DATASETS"); want == "" || strings.Contains(want, d.name) {
			datasets = append(datasets, d)
		}
	}
	for _, tool := range []string{"sysbench", "mariadb-dump", "mariadb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed (Debian: apt-get install -y sysbench mariadb-client): %w", tool, err)
		}
	}
	parent := os.Getenv("BENCH_DIR")
	dir, err := os.MkdirTemp(parent, "hamal-snapshot-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o777) // the source server writes the LOAD DATA files here
	progress("BENCH_SCALE=%g (%d rows per table), rounds %d, workers %d, chunk_rows %d, %d CPUs, data under %s, load average %s",
		scale, rows, rounds, workers, chunk, runtime.NumCPU(), dir, loadavg())

	bin, err := harness.HamalBinary(".", dir)
	if err != nil {
		return fmt.Errorf("%w (run the bench from the repository root)", err)
	}
	var src, dst *harness.Server
	var startErr [2]error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		src, startErr[0] = harness.StartMariaDB(harness.Options{ServerID: 1, Dir: filepath.Join(dir, "source"), Args: sourceArgs})
	}()
	go func() {
		defer wg.Done()
		dst, startErr[1] = harness.StartMariaDB(harness.Options{ServerID: 2, Dir: filepath.Join(dir, "target"), Args: targetArgs})
	}()
	wg.Wait()
	if src != nil {
		defer src.Remove()
	}
	if dst != nil {
		defer dst.Remove()
	}
	if err := errors.Join(startErr[:]...); err != nil {
		return err
	}

	var results []result
	for _, d := range datasets {
		if err := prepare(src, d, dir); err != nil {
			return err
		}
		contenders := []string{"hamal snapshot", "hamal snapshot (REPLACE, local_infile off)", "LOAD DATA LOCAL", "mariadb-dump | mariadb"}
		if d.tables > 1 {
			contenders = append(contenders, fmt.Sprintf("LOAD DATA LOCAL, %d streams", d.tables))
		}
		for r := 0; r < rounds; r++ {
			// Alternate the order, so no contender always runs on a
			// warmer (or more loaded) machine than another.
			order := append([]string(nil), contenders...)
			if r%2 == 1 {
				for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
					order[i], order[j] = order[j], order[i]
				}
			}
			for _, c := range order {
				res, err := race(c, bin, src, dst, d, dir, workers, chunk)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", d.name, c, err)
				}
				progress("%s | %s | %d rows in %s = %.0f rows/s | load %s | rss %s", d.name, c, res.rows, res.took.Round(time.Millisecond),
					float64(res.rows)/res.took.Seconds(), res.load, mib(res.rss))
				results = append(results, res)
			}
		}
	}
	report(results, datasets, scale, workers, chunk)
	return nil
}

// prepare fills database d.name on the source with sysbench's tables and
// writes each table's rows to a file for LOAD DATA.
func prepare(src *harness.Server, d dataset, dir string) error {
	if err := src.Exec("DROP DATABASE IF EXISTS "+d.name, "CREATE DATABASE "+d.name); err != nil {
		return err
	}
	host, port := splitAddr(src.Addr)
	progress("%s: sysbench prepare, %d table(s) of %d rows", d.name, d.tables, d.rows)
	cmd := exec.Command("sysbench", "oltp_read_write", "--db-driver=mysql", "--mysql-host="+host, "--mysql-port="+port,
		"--mysql-user=root", "--mysql-db="+d.name, fmt.Sprintf("--tables=%d", d.tables), fmt.Sprintf("--table-size=%d", d.rows),
		fmt.Sprintf("--threads=%d", min(d.tables, 4)), "prepare")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sysbench prepare: %w\n%s", err, out)
	}
	for i := 1; i <= d.tables; i++ {
		f := dataFile(dir, d, i)
		_ = os.Remove(f)
		if err := src.Exec(fmt.Sprintf("SELECT * INTO OUTFILE '%s' FROM %s.sbtest%d", f, d.name, i)); err != nil {
			return err
		}
	}
	return nil
}

func dataFile(dir string, d dataset, i int) string {
	return filepath.Join(dir, fmt.Sprintf("%s-sbtest%d.tsv", d.name, i))
}

// race runs one contender into a fresh database d.name on dst and checks
// the result against the source.
func race(contender, bin string, src, dst *harness.Server, d dataset, dir string, workers, chunk int) (result, error) {
	res := result{dataset: d.name, contender: contender, rows: int64(d.tables * d.rows)}
	if err := dst.Exec("DROP DATABASE IF EXISTS " + d.name); err != nil {
		return res, err
	}
	t0, err1 := dst.CPUTime()
	s0, err2 := src.CPUTime()
	if err := errors.Join(err1, err2); err != nil {
		return res, err
	}
	var err error
	switch {
	case strings.HasPrefix(contender, "hamal"):
		insert := strings.Contains(contender, "REPLACE")
		if insert {
			if err := dst.Exec("SET GLOBAL local_infile=0"); err != nil {
				return res, err
			}
			defer dst.Exec("SET GLOBAL local_infile=1")
		}
		res.took, res.rss, res.clientCPU, err = runHamal(bin, src, dst, d, dir, workers, chunk)
	case strings.HasPrefix(contender, "LOAD DATA"):
		streams := 1
		if strings.Contains(contender, "streams") {
			streams = d.tables
		}
		if err := createTables(src, dst, d); err != nil {
			return res, err
		}
		res.took, err = loadData(dst, d, dir, streams)
	default:
		if err := dst.Exec("CREATE DATABASE " + d.name); err != nil {
			return res, err
		}
		res.took, res.clientCPU, err = dumpAndLoad(src, dst, d)
	}
	if err != nil {
		return res, err
	}
	t1, err1 := dst.CPUTime()
	s1, err2 := src.CPUTime()
	if err := errors.Join(err1, err2); err != nil {
		return res, err
	}
	res.targetCPU, res.sourceCPU = t1-t0, s1-s0
	res.load = loadavg()
	return res, sameTables(src, dst, d)
}

// runHamal runs hamal with source.start: snapshot until the copy is done
// and returns the copy's duration (from its /status), hamal's peak RSS and
// the CPU time it used.
func runHamal(bin string, src, dst *harness.Server, d dataset, dir string, workers, chunk int) (time.Duration, int64, time.Duration, error) {
	run, err := os.MkdirTemp(dir, "hamal-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(run)
	port, err := harness.FreePort()
	if err != nil {
		return 0, 0, 0, err
	}
	admin := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`name: bench-snapshot
source:
  kind: mysql
  addr: %s
  user: root
  server_id: 9901
  start: snapshot
  tables: ["%s.*"]
  snapshot: {workers: %d, chunk_rows: %d}
sink:
  kind: mysql
  addr: %s
  user: root
checkpoint:
  dir: %s
admin:
  listen: %s
log:
  level: warn
`, src.Addr, d.name, workers, chunk, dst.Addr, filepath.Join(run, "checkpoint"), admin)
	path := filepath.Join(run, "hamal.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return 0, 0, 0, err
	}
	cmd := exec.Command(bin, "run", "--config", path, "--exit-on-error")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	exited, err := harness.Spawn(cmd)
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()
	deadline := time.Now().Add(2 * time.Hour)
	hc := &http.Client{Timeout: 5 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return 0, 0, 0, fmt.Errorf("hamal exited before the copy was done: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		st, err := status(hc, admin)
		if err != nil || st.Snapshot == nil || st.Snapshot.State != "done" {
			continue
		}
		rss, err1 := peakRSS(cmd.Process.Pid)
		cpu, err2 := processCPU(cmd.Process.Pid)
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, 0, err
		}
		return st.Snapshot.FinishedAt.Sub(st.Snapshot.StartedAt), rss, cpu, nil
	}
	return 0, 0, 0, errors.New("the copy did not finish within 2 hours")
}

func status(hc *http.Client, addr string) (pipeline.Status, error) {
	var st pipeline.Status
	resp, err := hc.Get("http://" + addr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// createTables creates d's tables on dst from the source's definitions.
func createTables(src, dst *harness.Server, d dataset) error {
	stmts := []string{"CREATE DATABASE " + d.name, "USE " + d.name}
	for i := 1; i <= d.tables; i++ {
		r, err := src.Query(fmt.Sprintf("SHOW CREATE TABLE %s.sbtest%d", d.name, i))
		if err != nil {
			return err
		}
		stmts = append(stmts, r[0][1])
	}
	c, err := dst.Connect("")
	if err != nil {
		return err
	}
	defer c.Close()
	for _, q := range stmts {
		if _, err := c.Execute(q); err != nil {
			return err
		}
	}
	return nil
}

// loadData loads each table's file with LOAD DATA LOCAL, on streams
// connections at once (one table each).
func loadData(dst *harness.Server, d dataset, dir string, streams int) (time.Duration, error) {
	conns := make([]*client.Conn, streams)
	for i := range conns {
		c, err := client.Connect(dst.Addr, "root", "", d.name, func(c *client.Conn) error { return c.SetCapability(mysql.CLIENT_LOCAL_FILES) })
		if err != nil {
			return 0, err
		}
		defer c.Close()
		conns[i] = c
	}
	start := time.Now()
	errs := make(chan error, d.tables)
	var wg sync.WaitGroup
	next := make(chan int, d.tables)
	for i := 1; i <= d.tables; i++ {
		next <- i
	}
	close(next)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := c.ExecQueryRelayLocalInfile(fmt.Sprintf("LOAD DATA LOCAL INFILE 'rows' INTO TABLE sbtest%d", i),
					func([]byte) (io.Reader, error) { return os.Open(dataFile(dir, d, i)) })
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return time.Since(start), <-errs
}

// dumpAndLoad pipes mariadb-dump of the source database into mariadb on
// the target; it returns the time and the CPU the two clients used.
func dumpAndLoad(src, dst *harness.Server, d dataset) (time.Duration, time.Duration, error) {
	sh, sp := splitAddr(src.Addr)
	th, tp := splitAddr(dst.Addr)
	script := fmt.Sprintf("set -o pipefail; mariadb-dump -h%s -P%s -uroot --single-transaction %s | mariadb -h%s -P%s -uroot %s", sh, sp, d.name, th, tp, d.name)
	start := time.Now()
	cmd := exec.CommandContext(context.Background(), "bash", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w\n%s", script, err, out)
	}
	took := time.Since(start)
	var cpu time.Duration
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok { // bash's, its waited children included
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return took, cpu, nil
}

// sameTables compares every table of d on both servers by row count and
// CHECKSUM TABLE.
func sameTables(src, dst *harness.Server, d dataset) error {
	for i := 1; i <= d.tables; i++ {
		q := fmt.Sprintf("SELECT COUNT(*) FROM %s.sbtest%d", d.name, i)
		sum := fmt.Sprintf("CHECKSUM TABLE %s.sbtest%d", d.name, i)
		a, err1 := src.Query(q)
		b, err2 := dst.Query(q)
		c, err3 := src.Query(sum)
		e, err4 := dst.Query(sum)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return err
		}
		if a[0][0] != b[0][0] || c[0][1] != e[0][1] {
			return fmt.Errorf("sbtest%d differs: source %s rows (checksum %s), target %s rows (checksum %s)", i, a[0][0], c[0][1], b[0][0], e[0][1])
		}
	}
	return nil
}

func report(results []result, datasets []dataset, scale float64, workers, chunk int) {
	fmt.Printf("\nHamal snapshot benchmark — BENCH_SCALE=%g, workers %d, chunk_rows %d, %d CPUs, load average %s, %s\n\n",
		scale, workers, chunk, runtime.NumCPU(), loadavg(), time.Now().UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "dataset\tcontender\trows\tseconds\trows/s\tvs LOAD DATA\tvs dump|load\tCPU µs/row target+source+client\tload avg\thamal peak RSS")
	for _, d := range datasets {
		medians := map[string]result{}
		var order []string
		byContender := map[string][]result{}
		for _, r := range results {
			if r.dataset != d.name {
				continue
			}
			if _, ok := byContender[r.contender]; !ok {
				order = append(order, r.contender)
			}
			byContender[r.contender] = append(byContender[r.contender], r)
		}
		for c, rs := range byContender {
			sort.Slice(rs, func(i, j int) bool { return rs[i].took < rs[j].took })
			medians[c] = rs[len(rs)/2]
		}
		rate := func(r result) float64 { return float64(r.rows) / r.took.Seconds() }
		load, dump := medians["LOAD DATA LOCAL"], medians["mariadb-dump | mariadb"]
		sort.SliceStable(order, func(i, j int) bool { return rate(medians[order[i]]) > rate(medians[order[j]]) })
		for _, c := range order {
			r := medians[c]
			us := func(cpu time.Duration) float64 { return float64(cpu.Microseconds()) / float64(r.rows) }
			fmt.Fprintf(tw, "%s (%d×%d)\t%s\t%d\t%.2f\t%.0f\t%.0f %%\t%.2fx\t%.1f+%.1f+%.1f\t%s\t%s\n", d.name, d.tables, d.rows, c, r.rows, r.took.Seconds(), rate(r),
				100*rate(r)/rate(load), rate(r)/rate(dump), us(r.targetCPU), us(r.sourceCPU), us(r.clientCPU), r.load, mib(r.rss))
		}
	}
	tw.Flush()
	fmt.Println("\nGoals: hamal snapshot at >= 80 % of LOAD DATA LOCAL (one stream) and >= 2x mariadb-dump | mariadb; peak RSS bounded (chunks, never a table).")
}

func mib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// peakRSS returns a process's VmHWM (peak resident set) in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// processCPU is a process's CPU time (user and system) from /proc.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	rest := string(b)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest) // f[0] is field 3
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(u+s) * time.Second / 100, nil // USER_HZ
}

func splitAddr(addr string) (string, string) {
	host, port, _ := strings.Cut(addr, ":")
	return host, port
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
