package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/test/harness"
)

// Waiting on and reading the servers' state: key counts, command
// statistics, CPU, differing keys, the host's load.

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

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}
