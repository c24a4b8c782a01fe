package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/test/harness"
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

// round runs one contender on a fresh master and a fresh target: the full
// sync of the keys, the catch-up of the stream commands, and (withKill)
// a kill -9 in the middle of a second batch of commands.
func (e *env) round(ctx context.Context, work, name string, round int, keyCmds, streamCmds, killCmds []command, withKill bool) (result, error) {
	var r result
	dir, err := os.MkdirTemp(work, fmt.Sprintf("%s-%d-", name, round+1))
	if err != nil {
		return r, err
	}
	for _, sub := range []string{"master", "target"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return r, err
		}
	}
	// The backlog and the replica output buffer hold a whole batch of
	// commands written while the contender is stopped (SIGSTOP).
	master, err := harness.StartRedis(harness.RedisOptions{Dir: filepath.Join(dir, "master"), Args: []string{
		"--repl-backlog-size", "1gb", "--repl-timeout", "600", "--client-output-buffer-limit", "replica 0 0 0"}})
	if err != nil {
		return r, err
	}
	defer master.Remove()
	target, err := harness.StartRedis(harness.RedisOptions{Dir: filepath.Join(dir, "target")})
	if err != nil {
		return r, err
	}
	defer target.Remove()
	mc, tc := master.Client(), target.Client()
	defer mc.Close()
	defer tc.Close()
	if err := write(ctx, mc, keyCmds); err != nil {
		return r, fmt.Errorf("load the master: %w", err)
	}
	want, err := mc.DBSize(ctx).Result()
	if err != nil {
		return r, err
	}

	var c *contender
	if name == "hamal" {
		c, err = newHamal(e.hamal, dir, master.Addr, target.Addr)
	} else {
		c, err = newRedisShake(e.shake, dir, master.Addr, target.Addr)
	}
	if err != nil {
		return r, err
	}
	defer c.stop()

	// 1. Full sync.
	tcpu0 := serverCPU(ctx, tc)
	t0 := time.Now()
	if err := c.start(); err != nil {
		return r, err
	}
	if e.profile != "" && c.admin != "" {
		go func() {
			// As soon as the admin API answers: the process has just started.
			path := fmt.Sprintf("%s-%s-%d-fullsync.pprof", e.profile, name, round+1)
			for i := 0; i < 200; i++ {
				if err := c.profile(path, time.Duration(e.profileSecs)*time.Second); err == nil {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	if err := waitFor(30*time.Minute, c, func() (bool, error) {
		n, err := dataKeys(ctx, tc, want)
		return n >= want, err
	}); err != nil {
		return r, fmt.Errorf("full sync: %w", err)
	}
	r.fullSync = time.Since(t0)
	r.toolCPUFull, r.targetCPUFull = c.cpu(), serverCPU(ctx, tc)-tcpu0
	fmt.Fprintf(os.Stderr, "round %d %s: full sync of %d keys in %s\n", round+1, name, want, r.fullSync.Round(time.Millisecond))

	// 2. Streaming catch-up: the commands wait in the master's buffers
	// while the contender is stopped, then it applies them.
	applied, err := e.catchUp(ctx, c, mc, tc, streamCmds, fmt.Sprintf("%s-%d", name, round+1), &r)
	if err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "round %d %s: %d commands in %s\n", round+1, name, applied, r.stream.Round(time.Millisecond))
	if r.differing, err = differing(ctx, master, target); err != nil {
		return r, err
	}
	if !withKill {
		return r, nil
	}

	// 3. kill -9 half way through another batch, then start it again.
	// First 2 s of quiet, more than a checkpoint interval, so a resume can
	// start from the stream rather than from the full sync.
	time.Sleep(2 * time.Second)
	k := &killResult{}
	r.kill = k
	if err := c.signal(syscall.SIGSTOP); err != nil {
		return r, err
	}
	base, err := appliedCount(ctx, tc)
	if err != nil {
		return r, err
	}
	if err := write(ctx, mc, killCmds); err != nil {
		return r, err
	}
	if err := c.signal(syscall.SIGCONT); err != nil {
		return r, err
	}
	if err := waitFor(10*time.Minute, c, func() (bool, error) {
		n, err := appliedCount(ctx, tc)
		return n-base >= int64(len(killCmds)/2), err
	}); err != nil {
		return r, fmt.Errorf("before the kill: %w", err)
	}
	c.kill()
	syncs0 := infoInt(ctx, mc, "stats", "sync_full")
	if err := c.start(); err != nil {
		return r, err
	}
	if err := quiesce(ctx, c, tc, 10*time.Minute); err != nil {
		return r, fmt.Errorf("after the kill: %w", err)
	}
	k.fullSyncs = infoInt(ctx, mc, "stats", "sync_full") - syncs0
	k.after = c.exitNote()
	if k.differing, err = differing(ctx, master, target); err != nil {
		return r, err
	}
	k.lists, k.extra, err = listLengths(ctx, mc, tc)
	if err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "round %d %s: after kill -9: %d differing keys, %d lists of another length (%+d elements), %d full syncs, %s\n",
		round+1, name, k.differing, k.lists, k.extra, k.fullSyncs, k.after)
	return r, nil
}

// catchUp stops c, writes cmds to the master, lets c go and times until
// the target ran them all.
func (e *env) catchUp(ctx context.Context, c *contender, mc, tc *goredis.Client, cmds []command, label string, r *result) (int64, error) {
	if err := c.signal(syscall.SIGSTOP); err != nil {
		return 0, err
	}
	base, err := appliedCount(ctx, tc)
	if err != nil {
		return 0, err
	}
	if err := write(ctx, mc, cmds); err != nil {
		return 0, fmt.Errorf("write the commands: %w", err)
	}
	ccpu, tcpu := c.cpu(), serverCPU(ctx, tc)
	if err := c.signal(syscall.SIGCONT); err != nil {
		return 0, err
	}
	t0 := time.Now()
	profiled := make(chan error, 1)
	if e.profile != "" && c.admin != "" {
		go func() {
			profiled <- c.profile(e.profile+"-"+label+"-stream.pprof", time.Duration(e.profileSecs)*time.Second)
		}()
	} else {
		profiled <- nil
	}
	var n int64
	if err := waitFor(30*time.Minute, c, func() (bool, error) {
		var err error
		n, err = appliedCount(ctx, tc)
		n -= base
		return n >= int64(len(cmds)), err
	}); err != nil {
		return n, fmt.Errorf("catch-up: %w", err)
	}
	r.stream = time.Since(t0)
	r.toolCPU, r.targetCPU = c.cpu()-ccpu, serverCPU(ctx, tc)-tcpu
	if err := <-profiled; err != nil {
		fmt.Fprintf(os.Stderr, "profile: %v\n", err)
	}
	return n, nil
}

// waitFor polls ok every 10 ms until it holds, failing when c exits.
func waitFor(timeout time.Duration, c *contender, ok func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := ok()
		if err == nil && done {
			return nil
		}
		if !c.running() {
			return fmt.Errorf("%s %s (see %s)", c.name, c.exitNote(), filepath.Join(c.dir, "output.log"))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done within %s (last error %v)", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// quiesce waits until the target's data commands stop moving for 3 s (or
// c exited and they stopped).
func quiesce(ctx context.Context, c *contender, tc *goredis.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last, since := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		n, err := totalCalls(ctx, tc)
		if err != nil {
			return err
		}
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= 3*time.Second {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the target still changes after %s", timeout)
}

// dataKeys counts the target's keys that are not Hamal's own, once there
// are at least want keys (KEYS runs only then: it scans every key).
func dataKeys(ctx context.Context, tc *goredis.Client, want int64) (int64, error) {
	n, err := tc.DBSize(ctx).Result()
	if n < want || err != nil {
		return n, err
	}
	own, err := tc.Keys(ctx, "hamal:*").Result()
	return n - int64(len(own)), err
}

// commandStats returns INFO commandstats as calls by command name.
func commandStats(ctx context.Context, c *goredis.Client) (map[string]int64, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				out[name], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return out, nil
}

// appliedCount is how many stream commands the target has run.
func appliedCount(ctx context.Context, c *goredis.Client) (int64, error) {
	st, err := commandStats(ctx, c)
	var n int64
	for _, name := range appliedNames {
		n += st[name]
	}
	return n, err
}

// totalCalls counts the target's commands but those of the bench and of
// an idle contender (INFO, PING, a lease renewal: EVALSHA running GET and
// SET).
func totalCalls(ctx context.Context, c *goredis.Client) (int64, error) {
	st, err := commandStats(ctx, c)
	var n int64
	for name, calls := range st {
		switch name {
		case "info", "evalsha", "eval", "get", "set", "ping", "client|list", "client|id", "dbsize", "keys", "scan", "select", "llen", "type":
		default:
			n += calls
		}
	}
	return n, err
}

// serverCPU is the server's CPU time so far (INFO cpu).
func serverCPU(ctx context.Context, c *goredis.Client) time.Duration {
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, f := range []string{"used_cpu_sys", "used_cpu_user"} {
		v, _ := strconv.ParseFloat(field(info, f), 64)
		total += v
	}
	return time.Duration(total * float64(time.Second))
}

func field(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

func infoInt(ctx context.Context, c *goredis.Client, section, name string) int64 {
	info, _ := c.Info(ctx, section).Result()
	n, _ := strconv.ParseInt(field(info, name), 10, 64)
	return n
}

// differing compares the target with the master key by key (type, value,
// expiry); a compare that times out on a loaded machine is retried.
func differing(ctx context.Context, master, target *harness.Redis) (int, error) {
	var diffs []string
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if diffs, _, _, err = harness.RedisDiff(ctx, master, target, 2*time.Second); err == nil {
			return len(diffs), nil
		}
		time.Sleep(time.Second)
	}
	return 0, fmt.Errorf("compare: %w", err)
}

// listLengths compares the lengths of the master's lists on the target:
// how many differ and by how many elements in all (duplicates show as +).
func listLengths(ctx context.Context, mc, tc *goredis.Client) (int, int64, error) {
	var lists int
	var extra int64
	iter := mc.ScanType(ctx, 0, "s:*", 1000, "list").Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		a, err := mc.LLen(ctx, k).Result()
		if err != nil {
			return 0, 0, err
		}
		b, err := tc.LLen(ctx, k).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return 0, 0, err
		}
		if a != b {
			lists++
			extra += b - a
		}
	}
	return lists, extra, iter.Err()
}

// rawLimit loads the same commands into a fresh target with redis-cli
// --pipe: keys/s for the keys' commands, commands/s for the stream.
func rawLimit(ctx context.Context, work string, keyCmds, streamCmds []command, keys int) (float64, float64, error) {
	dir, err := os.MkdirTemp(work, "raw-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	target, err := harness.StartRedis(harness.RedisOptions{Dir: dir})
	if err != nil {
		return 0, 0, err
	}
	defer target.Remove()
	pipe := func(cmds []command, name string) (time.Duration, error) {
		path := filepath.Join(dir, name)
		if err := writeRESP(path, cmds); err != nil {
			return 0, err
		}
		in, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer in.Close()
		cmd := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strconv.Itoa(target.Port), "--pipe")
		cmd.Stdin = in
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "errors: 0") {
			return 0, fmt.Errorf("redis-cli --pipe: %v\n%s", err, out)
		}
		return time.Since(t0), nil
	}
	dk, err := pipe(keyCmds, "keys.resp")
	if err != nil {
		return 0, 0, err
	}
	ds, err := pipe(streamCmds, "stream.resp")
	if err != nil {
		return 0, 0, err
	}
	return float64(keys) / dk.Seconds(), float64(len(streamCmds)) / ds.Seconds(), nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

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
