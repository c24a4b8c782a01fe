// Command reshard measures hamal migrate on real MariaDB instances: the
// copy phase's rows/s as a fraction of LOAD DATA INFILE into the same four
// targets (the same rows, routed the same way), and the verify rows/s.
//
//	go run ./bench/reshard [-rows 200000] [-workers 4] [-chunk 10000] [-cpuprofile FILE]
//
// The copy rate counts from the moment the migration enters the copy phase
// (after preflight and snapshot) to the moment it leaves it. The machine
// may be loaded: compare the two figures of one run, not absolute numbers
// between runs.
// Figures depend on the machine; the program prints its core count.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/hamal-replication/hamal/reshard"
	"github.com/hamal-replication/hamal/test/harness"
)

func main() {
	rows := flag.Int("rows", 200000, "rows in the source table")
	workers := flag.Int("workers", 4, "copy workers")
	chunk := flag.Int("chunk", 10000, "copy.chunk_rows")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the copy to this file")
	flag.Parse()
	if err := run(*rows, *workers, *chunk, *profile); err != nil {
		log.Fatal(err)
	}
}

func run(rows, workers, chunk int, profile string) error {
	src, err := harness.StartMariaDB(harness.Options{ServerID: 1})
	if err != nil {
		return err
	}
	defer src.Remove()
	var targets []*harness.Server
	for i := 0; i < 4; i++ {
		t, err := harness.StartMariaDB(harness.Options{ServerID: 11 + i})
		if err != nil {
			return err
		}
		defer t.Remove()
		targets = append(targets, t)
	}
	ddl := "CREATE TABLE app.users (id BIGINT PRIMARY KEY, k INT NOT NULL, c VARCHAR(120) NOT NULL, pad VARCHAR(60) NOT NULL, KEY (k))"
	if err := src.Exec("CREATE DATABASE app", ddl, fmt.Sprintf(
		"INSERT INTO app.users SELECT seq, seq %% 1000, CONCAT('row-', seq, '-', MD5(seq)), REPEAT('p', 50) FROM app.seq_1_to_%d", rows)); err != nil {
		return err
	}
	fmt.Printf("reshard bench: %d rows, 1 source -> 4 targets (hash), %d CPUs, MariaDB on tmpfs\n", rows, runtime.NumCPU())

	// Baseline: LOAD DATA INFILE of each target's share, all four at once,
	// into a table of its own; run before and after the copy and averaged,
	// because a short burst on a loaded machine varies a lot.
	dir, err := os.MkdirTemp("", "reshard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	for j := range targets {
		f := filepath.Join(dir, fmt.Sprintf("t%d.tsv", j))
		if err := src.Exec(fmt.Sprintf("SELECT * INTO OUTFILE '%s' FROM app.users WHERE CRC32(id) %% 4 = %d", f, j)); err != nil {
			return err
		}
	}
	load := func(n int) (float64, error) {
		table := fmt.Sprintf("load%d.users", n)
		for _, t := range targets {
			if err := t.Exec(fmt.Sprintf("CREATE DATABASE load%d", n), strings.Replace(ddl, "app.users", table, 1)); err != nil {
				return 0, err
			}
		}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for j, t := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = t.Exec(fmt.Sprintf("LOAD DATA INFILE '%s' INTO TABLE %s", filepath.Join(dir, fmt.Sprintf("t%d.tsv", j)), table))
			}()
		}
		wg.Wait()
		rate := float64(rows) / time.Since(start).Seconds()
		for _, t := range targets {
			if err := t.Exec(fmt.Sprintf("DROP DATABASE load%d", n)); err != nil {
				return 0, err
			}
		}
		for _, e := range errs {
			if e != nil {
				return 0, e
			}
		}
		fmt.Printf("LOAD DATA INFILE into 4 targets (run %d): %.0f rows/s\n", n, rate)
		return rate, nil
	}
	load1, err := load(1)
	if err != nil {
		return err
	}

	// hamal migrate: snapshot + copy, then the automatic verify.
	plan := fmt.Sprintf("name: bench\nstate_dir: %s\nadmin: {listen: 127.0.0.1:0}\nsources:\n  - {addr: %s, user: root, server_id: 4301}\ntargets:\n",
		filepath.Join(dir, "state"), src.Addr)
	for _, t := range targets {
		plan += fmt.Sprintf("  - {addr: %s, user: root}\n", t.Addr)
	}
	plan += fmt.Sprintf("tables:\n  - {name: app.users, shard_key: id, rule: hash}\ncopy: {workers: %d, chunk_rows: %d}\nverify: {chunk_rows: 5000}\n", workers, chunk)
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
	start := time.Now()
	go func() { done <- m.Run(ctx) }()
	var copyRate float64
	var copyStart time.Time
	for {
		select {
		case err := <-done:
			cancel()
			return fmt.Errorf("migration stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		st := m.Status()
		if copyStart.IsZero() && st.Phase == reshard.PhaseCopy {
			copyStart = time.Now()
			if profile != "" {
				f, err := os.Create(profile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
			}
		}
		if copyRate == 0 && st.Phase == reshard.PhaseCatchup {
			if profile != "" {
				pprof.StopCPUProfile()
			}
			if copyStart.IsZero() {
				copyStart = start
			}
			copyRate = float64(st.RowsCopied) / time.Since(copyStart).Seconds()
			fmt.Printf("hamal migrate copy (%d workers, chunk_rows %d): %.0f rows/s (snapshot and preflight took %.1fs)\n",
				workers, chunk, copyRate, copyStart.Sub(start).Seconds())

		}
		if st.Verify != nil {
			v := st.Verify
			secs := v.FinishedAt.Sub(v.StartedAt).Seconds()
			fmt.Printf("hamal migrate verify: %d rows in %.1fs = %.0f rows/s (%d mismatches)\n", v.Tables[0].Rows, secs, float64(v.Tables[0].Rows)/secs, v.Mismatches)
			cancel()
			<-done
			load2, err := load(2)
			if err != nil {
				return err
			}
			loadRate := (load1 + load2) / 2
			fmt.Printf("copy = %.0f%% of LOAD DATA (the mean of its two runs, %.0f rows/s)\n", 100*copyRate/loadRate, loadRate)
			return nil
		}
	}
}
