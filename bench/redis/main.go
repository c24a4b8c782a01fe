package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	engineredis "github.com/hamal-replication/hamal/engine/redis"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
	srcredis "github.com/hamal-replication/hamal/source/redis"
	"github.com/hamal-replication/hamal/test/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/redis:", err)
		os.Exit(1)
	}
}

func run() error {
	scale := 1.0
	if v := os.Getenv("BENCH_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return fmt.Errorf("BENCH_SCALE=%q: want a positive number, e.g. 0.1", v)
		}
		scale = f
	}
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	keys := max(int(1_000_000*scale), 1000)
	cmds := max(int(500_000*scale), 1000)
	ctx := context.Background()
	dir := os.Getenv("BENCH_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	start := func(args ...string) (*harness.Redis, error) {
		d, err := os.MkdirTemp(dir, "bench-redis-")
		if err != nil {
			return nil, err
		}
		return harness.StartRedis(harness.RedisOptions{Dir: d, Args: args})
	}
	// The backlog holds the whole streaming workload, so the restarted
	// channel continues instead of doing a second full sync.
	master, err := start("--repl-backlog-size", "1gb")
	if err != nil {
		return err
	}
	defer master.Remove()
	target, err := start()
	if err != nil {
		return err
	}
	defer target.Remove()
	fmt.Fprintf(os.Stderr, "BENCH_SCALE=%g: %d keys, %d commands; master %s, target %s\n", scale, keys, cmds, master.Addr, target.Addr)

	t0 := time.Now()
	if err := loadKeys(ctx, master, keys); err != nil {
		return fmt.Errorf("load keys: %w", err)
	}
	fmt.Fprintf(os.Stderr, "loaded %d keys in %s\n", keys, time.Since(t0).Round(time.Millisecond))

	ckpt, err := os.MkdirTemp(dir, "bench-redis-checkpoint-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ckpt)

	// 1. Full sync.
	h, err := startHamal(ckpt, master.Addr, target.Addr)
	if err != nil {
		return err
	}
	t0 = time.Now()
	if err := h.waitCheckpoint(func(p srcredis.Position) bool { return !p.Snapshot }, 60*time.Minute); err != nil {
		h.stop()
		return fmt.Errorf("full sync: %w", err)
	}
	fullSync := time.Since(t0)
	fmt.Fprintf(os.Stderr, "full sync: %s\n", h.batches())
	if err := h.stop(); err != nil {
		return err
	}
	if err := equal(ctx, master, target, keys); err != nil {
		return fmt.Errorf("after the full sync: %w", err)
	}
	fmt.Fprintf(os.Stderr, "full sync: %s, target equal\n", fullSync.Round(time.Millisecond))

	// 2. Streaming catch-up.
	t0 = time.Now()
	if err := writeCommands(ctx, master, cmds, keys); err != nil {
		return fmt.Errorf("write commands: %w", err)
	}
	fmt.Fprintf(os.Stderr, "wrote %d commands to the master in %s\n", cmds, time.Since(t0).Round(time.Millisecond))
	endOffset, err := master.Info("replication", "master_repl_offset")
	if err != nil {
		return err
	}
	end, _ := strconv.ParseInt(endOffset, 10, 64)
	fullBefore, _ := master.Info("stats", "sync_full")
	h, err = startHamal(ckpt, master.Addr, target.Addr)
	if err != nil {
		return err
	}
	t0 = time.Now()
	if err := h.waitCheckpoint(func(p srcredis.Position) bool { return !p.Snapshot && p.Offset >= end }, 60*time.Minute); err != nil {
		h.stop()
		return fmt.Errorf("streaming: %w", err)
	}
	streaming := time.Since(t0)
	fmt.Fprintf(os.Stderr, "streaming: %s\n", h.batches())
	if err := h.stop(); err != nil {
		return err
	}
	if fullAfter, _ := master.Info("stats", "sync_full"); fullAfter != fullBefore {
		return fmt.Errorf("streaming: the restarted channel did a full sync (sync_full %s → %s); the backlog did not hold the workload", fullBefore, fullAfter)
	}
	if err := equal(ctx, master, target, keys); err != nil {
		return fmt.Errorf("after streaming: %w", err)
	}
	fmt.Fprintf(os.Stderr, "streaming: %s, target equal\n", streaming.Round(time.Millisecond))

	// 3. The raw SET rate of the same target.
	raw, err := redisBenchmark(target, max(keys, 200_000))
	if err != nil {
		return err
	}

	ksps := float64(keys) / fullSync.Seconds()
	cps := float64(cmds) / streaming.Seconds()
	fmt.Printf("\nRedis (BENCH_SCALE=%g; redis-server 7 on loopback, one machine)\n\n", scale)
	fmt.Printf("| measure | amount | time | rate | vs raw SET |\n|---|---|---|---|---|\n")
	fmt.Printf("| Hamal full sync (PSYNC, RDB → commands, mixed types) | %d keys | %s | %.0f keys/s | %.2f |\n",
		keys, fullSync.Round(time.Millisecond), ksps, ksps/raw)
	fmt.Printf("| Hamal streaming catch-up (+CONTINUE, fenced MULTI/EXEC) | %d commands | %s | %.0f commands/s | %.2f |\n",
		cmds, streaming.Round(time.Millisecond), cps, cps/raw)
	fmt.Printf("| redis-benchmark -t set -P 16 on the target | | | %.0f SET/s | 1.00 |\n", raw)
	return nil
}

// loadKeys writes n keys of mixed types to db 0 of r, pipelined.
func loadKeys(ctx context.Context, r *harness.Redis, n int) error {
	c := r.Client()
	defer c.Close()
	p := c.Pipeline()
	for i := 0; i < n; i++ {
		k := "k:" + strconv.Itoa(i)
		switch i % 6 {
		case 0:
			p.Set(ctx, k, strings.Repeat("v", 32)+strconv.Itoa(i), 0)
		case 1:
			p.RPush(ctx, k, i, "a", "b", "c", "d")
		case 2:
			p.HSet(ctx, k, "f1", i, "f2", "two", "f3", 3.5, "f4", "four", "f5", "x")
		case 3:
			p.SAdd(ctx, k, i, "a", "b", "c", "d")
		case 4:
			p.ZAdd(ctx, k, goredis.Z{Score: float64(i), Member: "m1"}, goredis.Z{Score: 2, Member: "m2"}, goredis.Z{Score: 3, Member: "m3"})
		case 5:
			p.XAdd(ctx, &goredis.XAddArgs{Stream: k, Values: []any{"f", i, "g", "x"}})
		}
		if i%7 == 0 {
			p.Expire(ctx, k, 24*time.Hour)
		}
		if p.Len() >= 2000 {
			if _, err := p.Exec(ctx); err != nil {
				return err
			}
		}
	}
	_, err := p.Exec(ctx)
	return err
}

// writeCommands writes n non-idempotent and idempotent commands over the
// loaded keys' space (new keys, so no type clashes), pipelined.
func writeCommands(ctx context.Context, r *harness.Redis, n, keys int) error {
	c := r.Client()
	defer c.Close()
	rnd := rand.New(rand.NewPCG(1, 2))
	p := c.Pipeline()
	space := max(keys/10, 100)
	for i := 0; i < n; i++ {
		k := "s:" + strconv.Itoa(rnd.IntN(space))
		switch rnd.IntN(7) {
		case 0:
			p.Incr(ctx, k+":n")
		case 1:
			p.LPush(ctx, k+":l", i)
		case 2:
			p.HIncrBy(ctx, k+":h", strconv.Itoa(rnd.IntN(5)), 1)
		case 3:
			p.ZIncrBy(ctx, k+":z", 1, strconv.Itoa(rnd.IntN(5)))
		case 4:
			p.SAdd(ctx, k+":set", rnd.IntN(50))
		case 5:
			p.Set(ctx, k+":s", i, 0)
		case 6:
			p.Append(ctx, k+":a", "ab")
		}
		if p.Len() >= 2000 {
			if _, err := p.Exec(ctx); err != nil {
				return err
			}
		}
	}
	_, err := p.Exec(ctx)
	return err
}

func equal(ctx context.Context, master, target *harness.Redis, atLeast int) error {
	var diffs []string
	var n int
	var err error
	// A read can time out on a loaded machine; that is not a difference.
	for attempt := 0; attempt < 5; attempt++ {
		if diffs, n, _, err = harness.RedisDiff(ctx, master, target, time.Second); err == nil {
			break
		}
		fmt.Fprintf(os.Stderr, "compare: %v; retrying\n", err)
		time.Sleep(time.Second)
	}
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		return fmt.Errorf("target differs from master in %d keys, e.g. %s", len(diffs), strings.Join(diffs[:min(5, len(diffs))], "; "))
	}
	if n < atLeast {
		return fmt.Errorf("compared %d keys, expected at least %d", n, atLeast)
	}
	return nil
}

var rpsRE = regexp.MustCompile(`SET: ([0-9.]+) requests per second`)

func redisBenchmark(r *harness.Redis, n int) (float64, error) {
	out, err := exec.Command("redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(r.Port),
		"-t", "set", "-n", strconv.Itoa(n), "-P", "16", "-q").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark: %w\n%s", err, out)
	}
	m := rpsRE.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return 0, fmt.Errorf("redis-benchmark: no SET rate in %q", out)
	}
	return strconv.ParseFloat(string(m[len(m)-1][1]), 64)
}

// hamalRun is one in-process channel, wired as `hamal run` wires it.
type hamalRun struct {
	reg    *prometheus.Registry
	ch     *pipeline.Channel
	store  *checkpoint.Store
	cancel context.CancelFunc
	done   chan error
}

func startHamal(dir, src, dst string) (*hamalRun, error) {
	store, err := checkpoint.Open(dir)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	// The Redis driver builds the source and the sink, as `hamal run`
	// does from a config with these keys.
	srcCfg, snkCfg := &engineredis.SourceConfig{Addr: src}, &engineredis.SinkConfig{Addr: dst}
	for _, b := range []struct {
		block config.Block
		path  string
	}{{srcCfg, "source"}, {snkCfg, "sink"}} {
		s := config.NewScope(b.path, "")
		b.block.Validate(s)
		if err := s.Err(); err != nil {
			store.Close()
			return nil, err
		}
	}
	env := engine.Env{Channel: "bench-redis", Workers: 16, Logger: log}
	ch, err := pipeline.New(pipeline.Options{
		Name: "bench-redis",
		OpenSource: func(ctx context.Context, resume event.Position) (source.Source, error) {
			return srcCfg.Open(ctx, env, resume)
		},
		OpenSink: func(ctx context.Context) (sink.Sink, error) {
			return snkCfg.Open(ctx, env)
		},
		Store:              store,
		Workers:            16,
		BatchTxns:          256,
		CheckpointInterval: 50 * time.Millisecond,
		ExitOnError:        true,
		Logger:             log,
		Registerer:         reg,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &hamalRun{reg: reg, ch: ch, store: store, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- ch.Run(ctx) }()
	return h, nil
}

// waitCheckpoint waits until the channel's checkpoint position satisfies
// ok with nothing in flight: everything up to it is applied.
func (h *hamalRun) waitCheckpoint(ok func(srcredis.Position) bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st := h.ch.Status()
		if st.CheckpointPosition != "" && st.InFlight == 0 {
			if p, err := srcredis.DecodePosition(event.Position(st.CheckpointPosition)); err == nil && ok(p) {
				return nil
			}
		}
		select {
		case err := <-h.done:
			h.done <- err
			return fmt.Errorf("hamal stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	st := h.ch.Status()
	return fmt.Errorf("checkpoint %s not reached within %s (state %s, last error %q)", st.CheckpointPosition, timeout, st.State, st.LastError)
}

// batches summarises the channel's coalescing: target transactions, mean
// source Txns per target transaction and mean apply time per batch. It
// explains a slow rate: many small batches point at round trips.
func (h *hamalRun) batches() string {
	mfs, err := h.reg.Gather()
	if err != nil {
		return err.Error()
	}
	var n uint64
	var txns, secs, retries float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "hamal_retries_total" {
				retries += m.GetCounter().GetValue()
			}
			hist := m.GetHistogram()
			if hist == nil {
				continue
			}
			switch mf.GetName() {
			case "hamal_batch_txns":
				n, txns = hist.GetSampleCount(), hist.GetSampleSum()
			case "hamal_apply_duration_seconds":
				secs = hist.GetSampleSum()
			}
		}
	}
	if n == 0 {
		return "no batches"
	}
	return fmt.Sprintf("%d batches, %.1f Txns/batch, %.2f ms/batch, %.0f retries", n, txns/float64(n), 1000*secs/float64(n), retries)
}

func (h *hamalRun) stop() error {
	h.cancel()
	err := <-h.done
	h.store.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("hamal: %w", err)
	}
	return nil
}
