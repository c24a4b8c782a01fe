package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
)

// long reports whether the long variants run (≥100k Redis commands, 1M
// keys, 200k migrated rows, 20k-transaction MySQL workloads): only without
// -short and with HAMAL_LONG=1. make test runs the default sizes, which
// take the same code paths.
func long() bool { return !testing.Short() && os.Getenv("HAMAL_LONG") == "1" }

type redisChannelOpts struct {
	name             string
	srcSite, dstSite string
	srcPassword      string
	// sourceExtra is YAML appended to the source block (indented by two).
	sourceExtra string
}

func newRedisChannel(t *testing.T, src, dst *harness.Redis, o redisChannelOpts) *channel {
	t.Helper()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if o.name == "" {
		o.name = "redis-e2e"
	}
	dir := t.TempDir()
	// With a token: the channel's errors name keys, which a response
	// without it redacts.
	c := &channel{dir: dir, path: filepath.Join(dir, "hamal.yaml"), adminAddr: fmt.Sprintf("127.0.0.1:%d", port), name: o.name,
		token: "e2e-redis-admin-token"}
	text := fmt.Sprintf(`name: %s
source:
  kind: redis
  addr: %s
  password: %q
  site: %q
%ssink:
  kind: redis
  addr: %s
  site: %q
apply:
  workers: 8
  batch_txns: 128
checkpoint:
  dir: %s
  interval: 200ms
admin:
  listen: %s
  token: %s
`, o.name, src.Addr, o.srcPassword, o.srcSite, o.sourceExtra, dst.Addr, o.dstSite, filepath.Join(dir, "state"), c.adminAddr, c.token)
	if err := os.WriteFile(c.path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// redisWorkload sends n commands in pipelines of 50 over every type,
// with the non-idempotent ones (INCR, LPUSH, APPEND, ZINCRBY, HINCRBY),
// TTLs, deletes, transactions and two databases; keys start with prefix.
func redisWorkload(t *testing.T, r *harness.Redis, prefix string, n int, rnd *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	c0, c1 := r.ClientDB(0), r.ClientDB(1)
	defer c0.Close()
	defer c1.Close()
	for sent := 0; sent < n; {
		c := c0
		if rnd.IntN(4) == 0 {
			c = c1
		}
		var p goredis.Pipeliner = c.Pipeline()
		if rnd.IntN(8) == 0 {
			p = c.TxPipeline()
		}
		for i := 0; i < 50 && sent < n; i++ {
			k := fmt.Sprintf("%s%d", prefix, rnd.IntN(500))
			switch rnd.IntN(13) {
			case 0:
				p.Incr(ctx, k+":n")
			case 1:
				p.LPush(ctx, k+":l", rnd.IntN(1000))
			case 2:
				p.Append(ctx, k+":s", "ab")
			case 3:
				p.ZIncrBy(ctx, k+":z", 1.5, strconv.Itoa(rnd.IntN(5)))
			case 4:
				p.HIncrBy(ctx, k+":h", strconv.Itoa(rnd.IntN(5)), 3)
			case 5:
				p.SAdd(ctx, k+":set", rnd.IntN(50))
			case 6:
				p.XAdd(ctx, &goredis.XAddArgs{Stream: k + ":x", Values: []any{"f", rnd.IntN(9)}})
			case 7:
				p.Expire(ctx, k+":l", time.Duration(300+rnd.IntN(300))*time.Second)
			case 8:
				p.Del(ctx, k+":set")
			case 9:
				p.SetEx(ctx, k+":ttl", "v", time.Duration(300+rnd.IntN(300))*time.Second)
			case 10:
				p.RPopLPush(ctx, k+":l", k+":l2")
			case 11:
				p.HSet(ctx, k+":h", "name", rnd.IntN(100))
			case 12:
				p.ZAdd(ctx, k+":z", goredis.Z{Score: float64(rnd.IntN(100)), Member: "m"})
			}
			sent++
		}
		if _, err := p.Exec(ctx); err != nil && err != goredis.Nil {
			t.Fatalf("workload: %v", err)
		}
	}
}

func seedRedis(t *testing.T, r *harness.Redis, prefix string, keys int) {
	t.Helper()
	ctx := context.Background()
	c := r.Client()
	defer c.Close()
	p := c.Pipeline()
	for i := 0; i < keys; i++ {
		k := fmt.Sprintf("%sseed:%d", prefix, i)
		switch i % 5 {
		case 0:
			p.Set(ctx, k, i, 0)
		case 1:
			p.RPush(ctx, k, i, "x")
		case 2:
			p.HSet(ctx, k, "f", i)
		case 3:
			p.SAdd(ctx, k, i, "y")
		case 4:
			p.ZAdd(ctx, k, goredis.Z{Score: float64(i), Member: "m"})
		}
		if i%7 == 0 {
			p.Expire(ctx, k, time.Hour)
		}
		if p.Len() >= 5000 {
			if _, err := p.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

func waitRedisEqual(t *testing.T, src, dst *harness.Redis, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		diffs, keys, dumpDiff, err := harness.RedisDiff(ctx, src, dst, time.Second)
		if err == nil && len(diffs) == 0 {
			if keys == 0 {
				t.Fatal("no keys compared")
			}
			t.Logf("source and target equal: %d keys (DUMP identical %d, equal by value and TTL %d)", keys, keys-dumpDiff, dumpDiff)
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatal(err)
			}
			if len(diffs) > 20 {
				diffs = diffs[:20]
			}
			t.Fatalf("target differs from source after %s (%d keys):\n%s", timeout, keys, strings.Join(diffs, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func infoInt(t *testing.T, r *harness.Redis, section, field string) int64 {
	t.Helper()
	v, err := r.Info(section, field)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("INFO %s %s = %q", section, field, v)
	}
	return n
}

// TestRedisKillAndResume: hamal is SIGKILLed at three random points of a
// workload of non-idempotent commands; after each restart it continues
// (+CONTINUE, no second full sync) and at the end the target holds exactly
// the source's keys, values and TTLs.
func TestRedisKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	n := 20000
	if long() {
		n = 120000
	}
	src := harness.RedisServer(t, harness.RedisOptions{})
	dst := harness.RedisServer(t, harness.RedisOptions{})
	seedRedis(t, src, "", 2000)
	ch := newRedisChannel(t, src, dst, redisChannelOpts{})
	p := ch.startRunning(t)
	waitRedisEqual(t, src, dst, 60*time.Second)

	seed := uint64(time.Now().UnixNano())
	rnd := rand.New(rand.NewPCG(seed, 7))
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Its own generator: rnd below picks the kill times concurrently.
		redisWorkload(t, src, "k", n, rand.New(rand.NewPCG(seed, 8)))
	}()
	for kill := 0; kill < 3; kill++ {
		time.Sleep(time.Duration(300+rnd.IntN(1500)) * time.Millisecond)
		p.kill(t)
		t.Logf("killed hamal (kill %d)", kill+1)
		p = ch.startRunning(t)
	}
	<-done
	waitRedisEqual(t, src, dst, 120*time.Second)
	if full := infoInt(t, src, "stats", "sync_full"); full != 1 {
		t.Errorf("master did %d full syncs, want 1 (each restart should continue)", full)
	}
	if partial := infoInt(t, src, "stats", "sync_partial_ok"); partial < 3 {
		t.Errorf("master accepted %d partial syncs, want ≥ 3", partial)
	}
	p.kill(t)
}

// TestRedisMasterRestart: the master restarts (SHUTDOWN SAVE, start)
// during streaming; hamal reconnects with +CONTINUE, the restarted master
// does no full sync, and the target converges.
func TestRedisMasterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src := harness.RedisServer(t, harness.RedisOptions{})
	dst := harness.RedisServer(t, harness.RedisOptions{})
	seedRedis(t, src, "", 500)
	ch := newRedisChannel(t, src, dst, redisChannelOpts{})
	ch.startRunning(t)
	rnd := rand.New(rand.NewPCG(11, 12))
	redisWorkload(t, src, "a", 3000, rnd)
	waitRedisEqual(t, src, dst, 60*time.Second)
	if err := src.Restart(); err != nil {
		t.Fatal(err)
	}
	redisWorkload(t, src, "b", 3000, rnd)
	waitRedisEqual(t, src, dst, 60*time.Second)
	if full := infoInt(t, src, "stats", "sync_full"); full != 0 {
		t.Errorf("restarted master did %d full syncs, want 0", full)
	}
	if partial := infoInt(t, src, "stats", "sync_partial_ok"); partial < 1 {
		t.Errorf("restarted master accepted %d partial syncs, want ≥ 1", partial)
	}
}

// TestRedisDualMaster: A⇄B with one channel each way, writes on disjoint
// prefixes on both; both converge, and once writes stop, neither master's
// replication offset moves: no write echoes back.
func TestRedisDualMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	slowPing := harness.RedisOptions{Args: []string{"--repl-ping-replica-period", "3600"}}
	a := harness.RedisServer(t, slowPing)
	b := harness.RedisServer(t, slowPing)
	ab := newRedisChannel(t, a, b, redisChannelOpts{name: "a2b", srcSite: "a", dstSite: "b"})
	ba := newRedisChannel(t, b, a, redisChannelOpts{name: "b2a", srcSite: "b", dstSite: "a"})
	ab.startRunning(t)
	ba.startRunning(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		redisWorkload(t, b, "b:", 5000, rand.New(rand.NewPCG(5, 6)))
	}()
	redisWorkload(t, a, "a:", 5000, rand.New(rand.NewPCG(3, 4)))
	<-done
	waitRedisEqual(t, a, b, 60*time.Second)
	// Quiesced: offsets must stand still (the ping period is an hour).
	var offA, offB int64
	stable := 0
	for i := 0; i < 60 && stable < 6; i++ {
		time.Sleep(500 * time.Millisecond)
		na, nb := infoInt(t, a, "replication", "master_repl_offset"), infoInt(t, b, "replication", "master_repl_offset")
		if na == offA && nb == offB {
			stable++
		} else {
			stable = 0
		}
		offA, offB = na, nb
	}
	if stable < 6 {
		t.Fatalf("replication offsets still moving after writes stopped (A %d, B %d): a write echoes", offA, offB)
	}
	for _, c := range []*channel{ab, ba} {
		st := c.waitState(t, 10*time.Second, func(st pipeline.Status) bool { return st.InFlight == 0 })
		t.Logf("%s: checkpoint %s, applied %d txns", c.name, st.CheckpointPosition, st.AppliedTxns)
	}
	waitRedisEqual(t, a, b, 5*time.Second)
}

// TestRedisBadInput: a wrong password and a checkpoint from another master
// each stop `hamal run` with a message naming the cause and the fix; an
// unreachable master keeps the channel retrying, saying which address.
func TestRedisBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src := harness.RedisServer(t, harness.RedisOptions{Password: "secret"})
	dst := harness.RedisServer(t, harness.RedisOptions{})
	t.Run("wrong password", func(t *testing.T) {
		ch := newRedisChannel(t, src, dst, redisChannelOpts{srcPassword: "wrong"})
		p := ch.start(t, "--exit-on-error")
		if code := p.wait(t, 30*time.Second); code == 0 || !containsAll(p.out.String(), []string{"authentication failed", "source.password"}) {
			t.Errorf("exit %d, output:\n%s", code, lastLines(p.out.String(), 10))
		}
	})
	t.Run("unreachable master", func(t *testing.T) {
		free, _ := harness.FreePort()
		gone := &harness.Redis{Addr: fmt.Sprintf("127.0.0.1:%d", free)}
		ch := newRedisChannel(t, gone, dst, redisChannelOpts{})
		// An outage, not a wrong setting: the channel stays up retrying
		// and names the address.
		ch.start(t, "--exit-on-error")
		st := ch.waitState(t, 30*time.Second, func(st pipeline.Status) bool { return st.State == pipeline.StateRetrying && st.LastError != "" })
		if !containsAll(st.LastError, []string{gone.Addr, "unreachable", "source.addr"}) {
			t.Errorf("last error %q does not name the address, unreachable and source.addr", st.LastError)
		}
	})
	t.Run("checkpoint from another master", func(t *testing.T) {
		other := harness.RedisServer(t, harness.RedisOptions{})
		c := other.Client()
		c.Set(context.Background(), "x", "1", 0)
		c.Close()
		ch := newRedisChannel(t, other, dst, redisChannelOpts{})
		p := ch.startRunning(t)
		ch.waitState(t, 30*time.Second, func(st pipeline.Status) bool {
			return strings.Contains(st.CheckpointPosition, `"offset"`) && !strings.Contains(st.CheckpointPosition, "snapshot")
		})
		p.kill(t)
		before, _ := ch.checkpointPos(t)
		// Point the same channel (same checkpoint) at another master.
		text, _ := os.ReadFile(ch.path)
		text = []byte(strings.Replace(string(text), other.Addr, src.Addr, 1))
		text = []byte(strings.Replace(string(text), `password: ""`, `password: "secret"`, 1))
		os.WriteFile(ch.path, text, 0o644)
		p = ch.start(t, "--exit-on-error")
		if code := p.wait(t, 30*time.Second); code == 0 || !containsAll(p.out.String(), []string{"checkpoint is from another master", "delete the channel's checkpoint"}) {
			t.Errorf("exit %d, output:\n%s", code, lastLines(p.out.String(), 10))
		}
		if after, _ := ch.checkpointPos(t); after != before {
			t.Errorf("checkpoint moved from %s to %s", before, after)
		}
	})
}

// TestRedisFullSyncThenStream: a full sync of many keys (20k; 1M with
// HAMAL_LONG=1) followed by streaming; the target ends equal to the source
// and hamal's peak RSS is reported.
func TestRedisFullSyncThenStream(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	keys := 20000
	if long() {
		keys = 1000000
	}
	src := harness.RedisServer(t, harness.RedisOptions{})
	dst := harness.RedisServer(t, harness.RedisOptions{})
	seedRedis(t, src, "", keys)
	ch := newRedisChannel(t, src, dst, redisChannelOpts{})
	start := time.Now()
	p := ch.startRunning(t)
	ch.waitState(t, 30*time.Minute, func(st pipeline.Status) bool {
		return st.InFlight == 0 && strings.Contains(st.CheckpointPosition, `"offset"`) && !strings.Contains(st.CheckpointPosition, "snapshot")
	})
	t.Logf("full sync of %d keys applied in %s (%.0f keys/s, wall clock, loaded machine)", keys, time.Since(start).Round(time.Millisecond),
		float64(keys)/time.Since(start).Seconds())
	redisWorkload(t, src, "s", 5000, rand.New(rand.NewPCG(9, 9)))
	waitRedisEqual(t, src, dst, 5*time.Minute)
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				t.Logf("hamal peak RSS after a full sync of %d keys: %s", keys, strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")))
			}
		}
	}
	if full := infoInt(t, src, "stats", "sync_full"); full != 1 {
		t.Errorf("master did %d full syncs, want 1", full)
	}
}
