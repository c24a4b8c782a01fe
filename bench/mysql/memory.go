package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// memory runs the real binary on one huge transaction and on a LONGBLOB
// workload, each into a fresh target, and reports its peak RSS.
func (b *bench) memory(bigRows int) error {
	binDir, err := os.MkdirTemp(b.dir, "bin-")
	if err != nil {
		return err
	}
	progress("memory: building hamal")
	bin, err := buildHamal(binDir)
	if err != nil {
		return err
	}
	// The huge transaction copies a table of bigRows rows, loaded unlogged.
	if err := b.src.Exec(createTable("bigsrc")); err != nil {
		return err
	}
	tsv := filepath.Join(b.dir, "bigsrc.tsv")
	if err := writeTSV(tsv, bigRows); err != nil {
		return err
	}
	if err := loadData(b.src, "bigsrc", tsv, false); err != nil {
		return err
	}
	cases := []struct {
		table, label string
		write        func() error
	}{
		{"big", fmt.Sprintf("one %d-row txn (INSERT…SELECT)", bigRows), func() error {
			return b.src.Exec("INSERT INTO bench.big SELECT * FROM bench.bigsrc")
		}},
		{"blobs", fmt.Sprintf("%d MB of LONGBLOB rows (1 MiB each)", scaled(200, b.scale)), func() error {
			return writeBlobs(b.ctx, b.src, scaled(200, b.scale), 1<<20)
		}},
	}
	for _, c := range cases {
		progress("memory: %s", c.label)
		if err := b.src.Exec(createTable(c.table)); err != nil {
			return err
		}
		start, err := b.src.GTIDPos()
		if err != nil {
			return err
		}
		if err := c.write(); err != nil {
			return err
		}
		want, err := state(b.src, c.table)
		if err != nil {
			return err
		}
		peak, elapsed, err := b.peakRSS(bin, c.table, start, want)
		if err != nil {
			return err
		}
		b.add("memory", c.label, hamal+" (binary)", "", fmtRate(rate(want.Rows, elapsed)),
			fmt.Sprintf("peak RSS %.0f MiB", float64(peak)/(1<<20)))
	}
	return nil
}

func (b *bench) peakRSS(bin, table, start string, want tableState) (int64, time.Duration, error) {
	t, err := b.srv.target(table)
	if err != nil {
		return 0, 0, err
	}
	defer b.srv.remove(t)
	t0 := time.Now()
	p, err := startHamalProcess(bin, b.dir, b.src.Addr, t.Addr, start)
	if err != nil {
		return 0, 0, err
	}
	err = p.waitRows(t, table, want.Rows, longWait)
	elapsed := time.Since(t0)
	peak, perr := p.peakRSS()
	p.stop()
	if err != nil {
		return 0, 0, err
	}
	if perr != nil {
		return 0, 0, perr
	}
	if err := verify(t, table, want, "hamal binary"); err != nil {
		return 0, 0, err
	}
	return peak, elapsed, nil
}
