// Command reshard measures hamal migrate on real MariaDB instances, on the
// four sysbench tables (sysbench oltp_write_only prepare) split from one
// shard into two by hash of id:
//
//   - the copy, unthrottled, in rows/s, against LOAD DATA INFILE of the
//     same rows into the same two targets in the same run (before and
//     after the copy, averaged);
//
//   - the cut-over's write block at a steady write load: from the fence
//     (read_only=1 on the source) to the switch (the targets hold the
//     source's final position; writes may go to them);
//
//   - reverse replication's lag (its channels' own lag, sampled every
//     10 ms) at the same load written on the new shards: p50, p99, max.
//
//     go run ./bench/reshard [-rows 1000000] [-rate 2000] [-duration 20s] [-workers 4] [-chunk 10000]
//
// BENCH_SCALE (a fraction, e.g. 0.01) scales -rows and -duration for a
// quick run. The machine may be loaded: compare the figures of one run,
// not absolute numbers between runs; the program prints its core count.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"log"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/reshard"
	"github.com/hamal-replication/hamal/test/harness"
)

const tables = 4

func main() {
	rows := flag.Int("rows", 1000000, "rows per sysbench table (4 tables)")
	rate := flag.Int("rate", 2000, "write load in transactions per second during the cut-over and on the new shards")
	duration := flag.Duration("duration", 20*time.Second, "how long to write on the new shards while sampling reverse lag")
	workers := flag.Int("workers", 4, "copy.workers")
	chunk := flag.Int("chunk", 10000, "copy.chunk_rows")
	flag.Parse()
	if s := os.Getenv("BENCH_SCALE"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 {
			log.Fatalf("BENCH_SCALE %q: want a positive fraction", s)
		}
		*rows = max(int(float64(*rows)*f), 100)
		*duration = max(time.Duration(float64(*duration)*f), 2*time.Second)
	}
	if err := run(*rows, *rate, *duration, *workers, *chunk); err != nil {
		log.Fatal(err)
	}
}

func shardOf(id int) int { return int(crc32.ChecksumIEEE([]byte(strconv.Itoa(id))) % 2) }

func run(rows, rate int, duration time.Duration, workers, chunk int) error {
	src, err := harness.StartMariaDB(harness.Options{ServerID: 1})
	if err != nil {
		return err
	}
	defer src.Remove()
	var targets []*harness.Server
	for i := 0; i < 2; i++ {
		t, err := harness.StartMariaDB(harness.Options{ServerID: 11 + i})
		if err != nil {
			return err
		}
		defer t.Remove()
		targets = append(targets, t)
	}
	if err := src.Exec("CREATE DATABASE sbtest"); err != nil {
		return err
	}
	prep := exec.Command("sysbench", "oltp_write_only", "--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-port="+strconv.Itoa(src.Port),
		"--mysql-user=root", "--mysql-db=sbtest", "--tables="+strconv.Itoa(tables), "--table-size="+strconv.Itoa(rows), "prepare")
	if out, err := prep.CombinedOutput(); err != nil {
		return fmt.Errorf("sysbench prepare: %v\n%s", err, out)
	}
	total := tables * rows
	fmt.Printf("reshard bench: %d sysbench tables x %d rows = %d rows, 1 source -> 2 targets (hash of id), %d CPUs\n", tables, rows, total, runtime.NumCPU())

	dir, err := os.MkdirTemp("", "reshard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	for n := 1; n <= tables; n++ {
		for j := range targets {
			f := filepath.Join(dir, fmt.Sprintf("sbtest%d.t%d.tsv", n, j))
			if err := src.Exec(fmt.Sprintf("SELECT * INTO OUTFILE '%s' FROM sbtest.sbtest%d WHERE CRC32(id) %% 2 = %d", f, n, j)); err != nil {
				return err
			}
		}
	}
	ddl, err := src.Query("SHOW CREATE TABLE sbtest.sbtest1")
	if err != nil {
		return err
	}
	load := func(run int) (float64, error) {
		db := fmt.Sprintf("load%d", run)
		for _, t := range targets {
			if err := t.Exec("CREATE DATABASE " + db); err != nil {
				return 0, err
			}
			for n := 1; n <= tables; n++ {
				stmt := strings.Replace(ddl[0][1], "CREATE TABLE `sbtest1`", fmt.Sprintf("CREATE TABLE %s.sbtest%d", db, n), 1)
				if err := t.Exec(stmt); err != nil {
					return 0, err
				}
			}
		}
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for j, t := range targets {
			for n := 1; n <= tables; n++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f := filepath.Join(dir, fmt.Sprintf("sbtest%d.t%d.tsv", n, j))
					if err := t.Exec(fmt.Sprintf("LOAD DATA INFILE '%s' INTO TABLE %s.sbtest%d", f, db, n)); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		r := float64(total) / time.Since(start).Seconds()
		for _, t := range targets {
			if err := t.Exec("DROP DATABASE " + db); err != nil {
				return 0, err
			}
		}
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
		fmt.Printf("LOAD DATA INFILE into 2 targets (run %d): %.0f rows/s\n", run, r)
		return r, nil
	}
	load1, err := load(1)
	if err != nil {
		return err
	}

	plan := fmt.Sprintf("name: bench\nstate_dir: %s\nadmin: {listen: 127.0.0.1:0}\nsources:\n  - {addr: %s, user: root, server_id: 4301}\ntargets:\n",
		filepath.Join(dir, "state"), src.Addr)
	for _, t := range targets {
		plan += fmt.Sprintf("  - {addr: %s, user: root}\n", t.Addr)
	}
	plan += "tables:\n"
	for n := 1; n <= tables; n++ {
		plan += fmt.Sprintf("  - {name: sbtest.sbtest%d, shard_key: id, rule: hash}\n", n)
	}
	plan += fmt.Sprintf("copy: {workers: %d, chunk_rows: %d, max_rows_per_second: 0}\nverify: {chunk_rows: 5000}\ncutover: {timeout: 2m}\n", workers, chunk)
	p, err := reshard.Parse([]byte(plan))
	if err != nil {
		return err
	}
	m, err := reshard.Open(p, nil, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	wait := func(what string, cond func(reshard.Status) bool) (reshard.Status, error) {
		for {
			select {
			case err := <-done:
				return reshard.Status{}, fmt.Errorf("migration stopped while waiting for %s: %v", what, err)
			case <-time.After(10 * time.Millisecond):
			}
			if st := m.Status(); cond(st) {
				return st, nil
			}
		}
	}
	if _, err := wait("copy", func(st reshard.Status) bool { return st.Phase == reshard.PhaseCopy }); err != nil {
		return err
	}
	copyStart := time.Now()
	st, err := wait("catch-up", func(st reshard.Status) bool { return st.Phase == reshard.PhaseCatchup })
	if err != nil {
		return err
	}
	copyRate := float64(st.RowsCopied) / time.Since(copyStart).Seconds()
	fmt.Printf("hamal migrate copy (%d workers, chunk_rows %d, unthrottled): %d rows at %.0f rows/s\n", workers, chunk, st.RowsCopied, copyRate)
	if st, err = wait("verify", func(st reshard.Status) bool { return st.Verify != nil && !st.Verifying }); err != nil {
		return err
	}
	fmt.Printf("hamal migrate verify: %d mismatches, %d wrong shard\n", st.Verify.Mismatches, st.Verify.WrongShard)
	load2, err := load(2)
	if err != nil {
		return err
	}
	loadRate := (load1 + load2) / 2
	fmt.Printf("copy = %.0f%% of LOAD DATA (the mean of its two runs, %.0f rows/s)\n", 100*copyRate/loadRate, loadRate)

	// The cut-over under load: the application writes on the source until
	// it is refused, then on the targets.
	srcLoad, err := startLoad([]*harness.Server{src}, rate, rows, func(int, int) bool { return true })
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // steady state before the fence
	if err := m.Request(ctx, "cutover"); err != nil {
		return err
	}
	if st, err = wait("switch", func(st reshard.Status) bool { return st.CutoverStep == reshard.StepSwitched }); err != nil {
		return err
	}
	srcLoad.stop()
	block := st.Cutover.SwitchedAt.Sub(st.Cutover.FencedAt)
	fmt.Printf("cut-over at %d txn/s: writes blocked %.0f ms (fence to switch; %d source writes before the fence)\n", rate, float64(block.Milliseconds()), srcLoad.ok.Load())

	// Reverse replication at the same load written on the new shards.
	tgLoad, err := startLoad(targets, rate, rows, func(j, id int) bool { return shardOf(id) == j })
	if err != nil {
		return err
	}
	var lags []float64
	end := time.Now().Add(duration)
	for time.Now().Before(end) {
		st := m.Status()
		if st.Reverse.State == reshard.ReverseFailing {
			return fmt.Errorf("reverse replication failing: %v", st.Reverse.Problems)
		}
		lags = append(lags, st.Reverse.LagSeconds)
		time.Sleep(10 * time.Millisecond)
	}
	tgLoad.stop()
	sort.Float64s(lags)
	pct := func(q float64) float64 { return lags[min(int(q*float64(len(lags))), len(lags)-1)] * 1000 }
	fmt.Printf("reverse replication at %.0f txn/s on the new shards (%d samples over %s): lag p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
		float64(tgLoad.ok.Load())/duration.Seconds(), len(lags), duration, pct(0.5), pct(0.99), lags[len(lags)-1]*1000)
	if tgLoad.failed.Load() > 0 || srcLoad.failed.Load() > 0 {
		fmt.Printf("writes refused: %d on the source (after the fence), %d on the targets\n", srcLoad.failed.Load(), tgLoad.failed.Load())
	}
	if err := m.Request(ctx, "complete"); err != nil {
		return err
	}
	return <-done
}

// load writes one-row UPDATE transactions at a fixed total rate over 8
// connections per server, spread over the servers; owns(j, id) picks the
// ids server j holds. Refused writes (read_only) are counted, not fatal.
type load struct {
	ok, failed atomic.Int64
	halt       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(servers []*harness.Server, rate, rows int, owns func(j, id int) bool) (*load, error) {
	l := &load{halt: make(chan struct{})}
	const conns = 8
	per := time.Duration(float64(time.Second) * float64(conns*len(servers)) / float64(rate))
	for j, s := range servers {
		for c := 0; c < conns; c++ {
			conn, err := client.Connect(s.Addr, "root", "", "sbtest")
			if err != nil {
				l.stop()
				return nil, err
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer conn.Close()
				rnd := rand.New(rand.NewSource(int64(j*100 + c)))
				tick := time.NewTicker(per)
				defer tick.Stop()
				for {
					select {
					case <-l.halt:
						return
					case <-tick.C:
					}
					id := rnd.Intn(rows) + 1
					for !owns(j, id) {
						id = rnd.Intn(rows) + 1
					}
					q := fmt.Sprintf("UPDATE sbtest%d SET k = k + 1 WHERE id = %d", rnd.Intn(tables)+1, id)
					if _, err := conn.Execute(q); err != nil {
						l.failed.Add(1)
						continue
					}
					l.ok.Add(1)
				}
			}()
		}
	}
	return l, nil
}

func (l *load) stop() {
	select {
	case <-l.halt:
	default:
		close(l.halt)
	}
	l.wg.Wait()
}
