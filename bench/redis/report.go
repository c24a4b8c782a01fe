package main

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Medians of the rounds and the results table.

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianOf returns the median over a contender's rounds of f.
func medianOf(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return median(v)
}

func printTable(e *env, names []string, results map[string][]result, rawKeys, rawCmds float64, load0, load1 string) {
	keys, cmds := float64(e.keys), float64(e.cmds)
	rate := func(name string, stream bool) float64 {
		return medianOf(results[name], func(r result) float64 {
			if stream {
				return cmds / r.stream.Seconds()
			}
			return keys / r.fullSync.Seconds()
		})
	}
	perOp := func(name string, f func(result) time.Duration, n float64) float64 {
		return medianOf(results[name], func(r result) float64 { return float64(f(r).Microseconds()) / n })
	}
	fmt.Printf("\nRedis (BENCH_SCALE=%g: %d keys, then %d commands; %d round(s), medians; redis-server 7 on loopback; load average %s at the start, %s at the end)\n\n",
		e.scale, e.keys, e.cmds, e.rounds, load0, load1)
	head := "| measure |"
	sep := "|---|"
	for _, n := range names {
		head += " " + n + " |"
		sep += "---|"
	}
	if len(names) > 1 {
		head += " hamal / redis-shake |"
		sep += "---|"
	}
	head += " `redis-cli --pipe` |"
	sep += "---|"
	fmt.Println(head)
	fmt.Println(sep)
	row := func(label string, vals []float64, format string, ratio bool, raw string) {
		line := "| " + label + " |"
		for _, v := range vals {
			line += " " + fmt.Sprintf(format, v) + " |"
		}
		if len(vals) > 1 {
			if ratio && vals[1] > 0 {
				line += fmt.Sprintf(" **%.2fx** |", vals[0]/vals[1])
			} else if vals[1] > 0 {
				line += fmt.Sprintf(" %.2f |", vals[0]/vals[1])
			} else {
				line += " |"
			}
		}
		line += " " + raw + " |"
		fmt.Println(line)
	}
	each := func(f func(string) float64) []float64 {
		out := make([]float64, len(names))
		for i, n := range names {
			out[i] = f(n)
		}
		return out
	}
	full := each(func(n string) float64 { return rate(n, false) })
	stream := each(func(n string) float64 { return rate(n, true) })
	row("full sync, keys/s", full, "%.0f", true, fmt.Sprintf("%.0f keys/s (hamal %.0f %%)", rawKeys, 100*full[0]/rawKeys))
	row("streaming catch-up, commands/s", stream, "%.0f", true, fmt.Sprintf("%.0f commands/s (hamal %.0f %%)", rawCmds, 100*stream[0]/rawCmds))
	row("tool CPU µs per key (full sync)", each(func(n string) float64 { return perOp(n, func(r result) time.Duration { return r.toolCPUFull }, keys) }), "%.1f", false, "")
	row("target CPU µs per key (full sync)", each(func(n string) float64 { return perOp(n, func(r result) time.Duration { return r.targetCPUFull }, keys) }), "%.1f", false, "")
	row("tool CPU µs per command (stream)", each(func(n string) float64 { return perOp(n, func(r result) time.Duration { return r.toolCPU }, cmds) }), "%.1f", false, "")
	row("target CPU µs per command (stream)", each(func(n string) float64 { return perOp(n, func(r result) time.Duration { return r.targetCPU }, cmds) }), "%.1f", false, "")
	row("keys differing after the catch-up", each(func(n string) float64 {
		return medianOf(results[n], func(r result) float64 { return float64(r.differing) })
	}), "%.0f", false, "")
	kill := func(f func(*killResult) string) string {
		line := ""
		for _, n := range names {
			k := results[n][0].kill
			line += " " + f(k) + " |"
		}
		if len(names) > 1 {
			line += " |"
		}
		return line + " |"
	}
	fmt.Println("| kill -9 half way through " + strconv.Itoa(e.cmds/2) + " more commands, restart: keys differing |" +
		kill(func(k *killResult) string { return strconv.Itoa(k.differing) }))
	fmt.Println("| … lists of another length (elements off) |" + kill(func(k *killResult) string { return fmt.Sprintf("%d (%+d)", k.lists, k.extra) }))
	fmt.Println("| … full syncs after the restart |" + kill(func(k *killResult) string { return strconv.FormatInt(k.fullSyncs, 10) }))
	fmt.Println("| … the tool afterwards |" + kill(func(k *killResult) string { return k.after }))
}
