package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/test/harness"
)

// One measured round of a contender (full sync, catch-up, kill -9) and
// the redis-cli --pipe baseline.

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
