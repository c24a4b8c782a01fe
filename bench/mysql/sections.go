package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// This file holds the sections after catch-up: the raw limit, the
// decoder alone, profiles and the slow link.

func (b *bench) raw(w1 *workload) error {
	tsv := filepath.Join(b.dir, "w1.tsv")
	if err := writeTSV(tsv, int(w1.txns)); err != nil {
		return err
	}
	hows := []string{"LOAD DATA LOCAL", "500-row INSERT"}
	rates := map[string][]float64{}
	for r := 1; r <= b.rounds; r++ {
		for _, how := range hows {
			progress("raw limit: %s (round %d of %d)", how, r, b.rounds)
			t, err := b.srv.target("w1")
			if err != nil {
				return err
			}
			start := time.Now()
			if how == "LOAD DATA LOCAL" {
				err = loadData(t, "w1", tsv, true)
			} else {
				err = multiRowInsert(t, "w1", int(w1.txns), 500)
			}
			d := time.Since(start)
			if err == nil {
				err = verify(t, "w1", w1.want, how)
			}
			b.srv.remove(t)
			if err != nil {
				return err
			}
			rates[how] = append(rates[how], rate(int64(w1.txns), d))
		}
	}
	hamalRate := b.loopback["W1/"+hamal]
	for _, how := range hows {
		r := median(rates[how])
		notes := []string{"hamal W1 not measured"}
		if hamalRate > 0 {
			notes[0] = fmt.Sprintf("hamal W1 = %.0f%% of this", 100*hamalRate/r)
		}
		b.add("raw limit", "W1 rows", how, "", fmtRate(r), strings.Join(append(notes, spread(rates[how])...), "; "))
	}
	return nil
}

func (b *bench) decodeRow(w *workload) error {
	progress("decode %s", w.name)
	// The bare library on the same binlog, so the reader's rate reads as
	// a fraction of it. Each is timed decodeRounds times, alternating, and
	// the best round counts: on a loaded machine one read of a few hundred
	// milliseconds is easily stalled by the scheduler.
	var best, bestRaw decoded
	for round := range decodeRounds {
		raw, err := rawSyncer(b.ctx, b.src.Addr, w.start, w.txns)
		if err != nil {
			return err
		}
		if round == 0 || raw.elapsed < bestRaw.elapsed {
			bestRaw = raw
		}
		stopProfile := func() {}
		if round == 0 {
			if stopProfile, err = b.startProfile("decode-" + strings.ToLower(w.name)); err != nil {
				return err
			}
		}
		d, err := decode(b.ctx, b.src.Addr, w.start, w.txns)
		stopProfile()
		if err != nil {
			return err
		}
		if round == 0 || d.elapsed < best.elapsed {
			best = d
		}
	}
	secs, rawSecs := best.elapsed.Seconds(), bestRaw.elapsed.Seconds()
	txns := float64(w.txns)
	note := fmt.Sprintf("%.0f events/s, %.1f MB/s, %.0f%% of bare go-mysql, CPU %.1f µs/txn, %.0f allocs/txn", float64(best.events)/secs,
		float64(w.binlogBytes)/1e6/secs, 100*rawSecs/secs, float64(best.cpu.Microseconds())/txns, float64(best.allocs)/txns)
	if h := b.loopback[w.name+"/"+hamal]; h > 0 {
		note += fmt.Sprintf(", %.1fx hamal's apply rate", txns/secs/h)
	}
	b.add("decode", w.name, "source reader", fmtRate(txns/secs), fmtRate(float64(best.rows)/secs), note)
	b.add("decode", w.name, "bare go-mysql syncer", fmtRate(txns/rawSecs), fmtRate(float64(w.rows)/rawSecs),
		fmt.Sprintf("%.0f binlog events/s, %.1f MB/s, CPU %.1f µs/txn, %.0f allocs/txn (GetEvent loop, no processing)",
			float64(bestRaw.events)/rawSecs, float64(w.binlogBytes)/1e6/rawSecs, float64(bestRaw.cpu.Microseconds())/txns,
			float64(bestRaw.allocs)/txns))
	return nil
}

// decodeRounds is how many times each decode contender reads a workload.
const decodeRounds = 5

// startProfile starts a CPU profile (and block and mutex profiles, the
// read path being latency- rather than CPU-bound) named
// BENCH_CPUPROFILE-name; the returned func stops and writes them. Without
// BENCH_CPUPROFILE it does nothing.
func (b *bench) startProfile(name string) (func(), error) {
	if b.profile == "" {
		return func() {}, nil
	}
	f, err := os.Create(b.profile + "-" + name + ".pprof")
	if err != nil {
		return nil, err
	}
	_ = pprof.StartCPUProfile(f)
	runtime.SetBlockProfileRate(10_000) // one sample per 10 µs blocked
	runtime.SetMutexProfileFraction(10)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		for _, p := range []string{"block", "mutex"} {
			if pf, err := os.Create(b.profile + "-" + name + "-" + p + ".pprof"); err == nil {
				_ = pprof.Lookup(p).WriteTo(pf, 0)
				pf.Close()
			}
		}
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}, nil
}

// probeLink times linkProbes SELECT 1 round trips through the link at
// addr, so the table can say what round trip the link really had: the
// delay is made with timers, and where the machine stalls its processes
// (see docs/performance.md) a 30 ms link is slower than 30 ms.
func (b *bench) probeLink(addr string) error {
	c, err := client.Connect(addr, "root", "", "")
	if err != nil {
		return fmt.Errorf("probe the link to %s: %w", addr, err)
	}
	defer c.Close()
	for range linkProbes {
		start := time.Now()
		if _, err := c.Execute("SELECT 1"); err != nil {
			return fmt.Errorf("probe the link to %s: %w", addr, err)
		}
		b.linkRTTs = append(b.linkRTTs, time.Since(start))
	}
	return nil
}

const linkProbes = 20

// rttNote sums up the probed round trips: median, mean and the slowest.
func rttNote(rtts []time.Duration) string {
	if len(rtts) == 0 {
		return "link round trip not probed"
	}
	s := slices.Sorted(slices.Values(rtts))
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }
	return fmt.Sprintf("SELECT 1 through the link: median %s ms, mean %s ms, max %s ms (%d probes)",
		ms(s[len(s)/2]), ms(sum/time.Duration(len(s))), ms(s[len(s)-1]), len(s))
}

// link times W2 over the 30 ms link. Each contender's loopback rate is
// timed again right before each link round, so the fraction compares
// figures taken minutes, not half an hour, apart.
func (b *bench) link(w2 *workload) error {
	for _, c := range []string{hamal, nativeOpt} {
		var direct, linked []float64
		b.linkRTTs = b.linkRTTs[:0]
		for r := 1; r <= b.rounds; r++ {
			for _, over := range []bool{false, true} {
				where := "loopback"
				if over {
					where = "30 ms link"
				}
				progress("30 ms link %s: %s on %s (round %d of %d)", w2.name, c, where, r, b.rounds)
				run, err := b.applyOnce(w2, c, over)
				if err != nil {
					return err
				}
				if over {
					linked = append(linked, rate(int64(w2.txns), run.elapsed))
				} else {
					direct = append(direct, rate(int64(w2.txns), run.elapsed))
				}
			}
		}
		r, lb := median(linked), median(direct)
		notes := append([]string{fmt.Sprintf("%.0f%% of loopback (%s txn/s in this section)", 100*r/lb, fmtRate(lb))}, spread(linked)...)
		notes = append(notes, rttNote(b.linkRTTs))
		b.add("30 ms link", w2.name, c, fmtRate(r), fmtRate(r*float64(w2.rows)/float64(w2.txns)), strings.Join(notes, "; "))
	}
	return nil
}
