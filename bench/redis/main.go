package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// live holds the contenders' processes, killed when the bench is
// interrupted.
var live = struct {
	sync.Mutex
	pids map[int]bool
}{pids: map[int]bool{}}

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		live.Lock()
		for pid := range live.pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		live.Unlock()
		fmt.Fprintln(os.Stderr, "bench/redis: interrupted; the contenders are killed, the servers' directories stay under BENCH_DIR")
		os.Exit(2)
	}()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/redis:", err)
		os.Exit(1)
	}
}

type env struct {
	scale       float64
	rounds      int
	keys, cmds  int
	dir         string
	hamal       string // binary
	shake       string // BENCH_REDISSHAKE
	profile     string // BENCH_PROFILE prefix
	profileSecs int
}

func readEnv() (*env, error) {
	e := &env{scale: 1, rounds: 1, profileSecs: 5}
	if v := os.Getenv("BENCH_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return nil, fmt.Errorf("BENCH_SCALE=%q: want a positive number, e.g. 0.1", v)
		}
		e.scale = f
	}
	e.shake = os.Getenv("BENCH_REDISSHAKE")
	if e.shake != "" {
		e.rounds = 2
		if _, err := os.Stat(e.shake); err != nil {
			return nil, fmt.Errorf("BENCH_REDISSHAKE=%s: %w; build RedisShake from its own source and give the binary's path", e.shake, err)
		}
	}
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("BENCH_ROUNDS=%q: want a positive integer", v)
		}
		e.rounds = n
	}
	if v := os.Getenv("BENCH_PROFILE_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 25 {
			return nil, fmt.Errorf("BENCH_PROFILE_SECONDS=%q: want 1 to 25", v)
		}
		e.profileSecs = n
	}
	e.profile = os.Getenv("BENCH_PROFILE")
	e.keys = max(int(300_000*e.scale), 1000)
	e.cmds = max(int(200_000*e.scale), 1000)
	e.dir = os.Getenv("BENCH_DIR")
	if e.dir == "" {
		e.dir = os.TempDir()
	}
	return e, os.MkdirAll(e.dir, 0o755)
}

// result is one contender's figures in one round.
type result struct {
	fullSync, stream     time.Duration
	toolCPUFull, toolCPU time.Duration // tool CPU over the full sync, over the catch-up
	targetCPUFull        time.Duration
	targetCPU            time.Duration
	differing            int // keys differing from the master after the catch-up
	kill                 *killResult
}

type killResult struct {
	differing int
	lists     int // lists whose length differs
	extra     int64
	fullSyncs int64
	after     string
}

func run() error {
	e, err := readEnv()
	if err != nil {
		return err
	}
	ctx := context.Background()
	work, err := os.MkdirTemp(e.dir, "bench-redis-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	e.hamal = os.Getenv("BENCH_HAMAL")
	if e.hamal == "" {
		e.hamal = filepath.Join(work, "hamal")
		if out, err := exec.Command("go", "build", "-o", e.hamal, "github.com/hamal-replication/hamal/cmd/hamal").CombinedOutput(); err != nil {
			return fmt.Errorf("build hamal: %w\n%s", err, out)
		}
	}
	load0 := loadavg()
	fmt.Fprintf(os.Stderr, "BENCH_SCALE=%g: %d keys, then %d commands; %d round(s); load average %s\n", e.scale, e.keys, e.cmds, e.rounds, load0)

	keyCmds := keyCommands(e.keys)
	streamCmds := streamCommands(e.cmds, e.keys, 1)
	killCmds := streamCommands(e.cmds/2, e.keys, 3)

	names := []string{"hamal"}
	if e.shake != "" {
		names = append(names, "redis-shake")
	}
	results := map[string][]result{}
	var rawKeys, rawCmds []float64
	for round := 0; round < e.rounds; round++ {
		order := slices.Clone(names)
		if round%2 == 1 {
			slices.Reverse(order) // alternate who goes first
		}
		for _, name := range order {
			r, err := e.round(ctx, work, name, round, keyCmds, streamCmds, killCmds, round == 0)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, name, err)
			}
			results[name] = append(results[name], r)
		}
		k, c, err := rawLimit(ctx, work, keyCmds, streamCmds, e.keys)
		if err != nil {
			return fmt.Errorf("raw limit: %w", err)
		}
		rawKeys, rawCmds = append(rawKeys, k), append(rawCmds, c)
		fmt.Fprintf(os.Stderr, "round %d: redis-cli --pipe %.0f keys/s, %.0f commands/s\n", round+1, k, c)
	}
	printTable(e, names, results, median(rawKeys), median(rawCmds), load0, loadavg())
	return nil
}
