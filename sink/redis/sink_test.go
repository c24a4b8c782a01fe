package redis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/redisrepl"
	"github.com/hamal-replication/hamal/sink"
	sinkredis "github.com/hamal-replication/hamal/sink/redis"
	"github.com/hamal-replication/hamal/source"
	srcredis "github.com/hamal-replication/hamal/source/redis"
	"github.com/hamal-replication/hamal/test/harness"
)

// seed writes every type, with and without TTLs, over two databases.
func seed(t *testing.T, r *harness.Redis, n int) {
	t.Helper()
	ctx := context.Background()
	for db := 0; db < 2; db++ {
		c := r.ClientDB(db)
		p := c.Pipeline()
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("seed:%d", i)
			var ttl time.Duration
			if i%3 == 0 {
				// Hours, not minutes: a key that expires while a slow run
				// compares source and target expires on each side at its
				// own moment (lazy or active expiry) and reads as a diff.
				ttl = time.Duration(3600+i) * time.Second
			}
			p.Set(ctx, k+":s", fmt.Sprintf("v%d", i), ttl)
			p.RPush(ctx, k+":l", "a", i, "c")
			p.SAdd(ctx, k+":set", i, "x", "y")
			p.ZAdd(ctx, k+":z", goredis.Z{Score: float64(i) / 3, Member: "m"}, goredis.Z{Score: -1, Member: "n"})
			p.HSet(ctx, k+":h", "f", i, "g", "w")
			p.XAdd(ctx, &goredis.XAddArgs{Stream: k + ":x", ID: fmt.Sprintf("%d-1", i+1), Values: []any{"f", i}})
			if ttl > 0 {
				for _, suffix := range []string{":l", ":set", ":z", ":h", ":x"} {
					p.Expire(ctx, k+suffix, ttl)
				}
			}
		}
		// A big list and hash, beyond one rebuilding command.
		for i := 0; i < 3*chunkForTest; i++ {
			p.RPush(ctx, "big:l", i)
			p.HSet(ctx, "big:h", fmt.Sprint(i), i)
		}
		p.XGroupCreateMkStream(ctx, "grouped", "g1", "0")
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

const chunkForTest = 512

// workload runs non-idempotent commands (INCR, LPUSH, APPEND, ZINCRBY,
// HINCRBY, …), transactions, expirations and deletes over a few hundred
// keys in two databases; it returns the number of commands sent.
func workload(ctx context.Context, t *testing.T, r *harness.Redis, n, seedN int, rnd *rand.Rand) int {
	c0, c1 := r.ClientDB(0), r.ClientDB(1)
	defer c0.Close()
	defer c1.Close()
	sent := 0
	for sent < n {
		c := c0
		if rnd.IntN(4) == 0 {
			c = c1
		}
		k := fmt.Sprintf("w:%d", rnd.IntN(200))
		p := c.Pipeline()
		if rnd.IntN(10) == 0 {
			p = c.TxPipeline()
		}
		for i := 0; i < 50; i++ {
			switch rnd.IntN(12) {
			case 0:
				p.Incr(ctx, k+":n")
			case 1:
				p.LPush(ctx, k+":l", rnd.IntN(1000))
			case 2:
				p.Append(ctx, k+":s", "ab")
			case 3:
				p.ZIncrBy(ctx, k+":z", 1.5, fmt.Sprint(rnd.IntN(5)))
			case 4:
				p.HIncrBy(ctx, k+":h", fmt.Sprint(rnd.IntN(5)), 3)
			case 5:
				p.SAdd(ctx, k+":set", rnd.IntN(50))
			case 6:
				p.XAdd(ctx, &goredis.XAddArgs{Stream: k + ":x", Values: []any{"f", rnd.IntN(9)}})
			case 7:
				p.Expire(ctx, k+":l", time.Duration(3600+rnd.IntN(100))*time.Second)
			case 8:
				p.Del(ctx, k+":set")
			case 9:
				p.RPopLPush(ctx, k+":l", k+":l2")
			case 10:
				p.IncrByFloat(ctx, k+":f", 0.25)
			case 11:
				p.LPush(ctx, fmt.Sprintf("seed:%d:l", rnd.IntN(max(seedN, 1))), "w")
			}
			sent++
		}
		if _, err := p.Exec(ctx); err != nil && err != goredis.Nil {
			t.Errorf("workload: %v", err)
			return sent
		}
	}
	return sent
}

type pipe struct {
	ch     *pipeline.Channel
	cancel context.CancelFunc
	done   chan error
	store  *checkpoint.Store
}

func runChannel(t *testing.T, name string, src, dst *harness.Redis, srcSite, dstSite string) *pipe {
	t.Helper()
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := pipeline.New(pipeline.Options{
		Name: name, Store: store, Workers: 8, BatchTxns: 64, CheckpointInterval: 100 * time.Millisecond,
		OpenSource: func(ctx context.Context, resume event.Position) (source.Source, error) {
			return srcredis.Open(ctx, srcredis.Config{Addr: src.Addr, Site: srcSite}, resume)
		},
		OpenSink: func(ctx context.Context) (sink.Sink, error) {
			return sinkredis.Open(ctx, sinkredis.Config{Addr: dst.Addr, Channel: name, Site: dstSite, Workers: 8})
		},
		ExitOnError: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipe{ch: ch, cancel: cancel, done: make(chan error, 1), store: store}
	go func() { p.done <- ch.Run(ctx) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *pipe) stop(t *testing.T) {
	if p.cancel == nil {
		return
	}
	p.cancel()
	if err := <-p.done; err != nil {
		t.Errorf("channel: %v", err)
	}
	p.cancel = nil
	p.store.Close()
}

// waitEqual waits until dst holds what src holds, then asserts it.
func waitEqual(t *testing.T, src, dst *harness.Redis, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	var diffs []string
	var keys, dumpDiff int
	var err error
	deadline := time.Now().Add(timeout)
	for {
		diffs, keys, dumpDiff, err = harness.RedisDiff(ctx, src, dst, time.Second)
		if err == nil && len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = diffs[:20]
		}
		t.Fatalf("target differs from source:\n%s", strings.Join(diffs, "\n"))
	}
	if keys == 0 {
		t.Fatal("no keys compared")
	}
	t.Logf("%d keys equal (DUMP identical for %d, equal by value and TTL for %d)", keys, keys-dumpDiff, dumpDiff)
}

func TestConformance(t *testing.T) {
	src := harness.RedisServer(t, harness.RedisOptions{})
	dst := harness.RedisServer(t, harness.RedisOptions{})
	seed(t, src, 300)
	p := runChannel(t, "conf", src, dst, "", "")
	rnd := rand.New(rand.NewPCG(1, 2))
	n := workload(context.Background(), t, src, 10000, 300, rnd)
	waitEqual(t, src, dst, 60*time.Second)
	t.Logf("%d workload commands", n)
	p.stop(t)
}

// TestReplayIsExactlyOnce applies the stream, then applies it all again
// (as after a crash that lost the checkpoint), and also a replay of a
// suffix from a fresh sink: the non-idempotent commands must not apply
// twice.
func TestReplayIsExactlyOnce(t *testing.T) {
	ctx := context.Background()
	src := harness.RedisServer(t, harness.RedisOptions{})
	dst := harness.RedisServer(t, harness.RedisOptions{})
	seed(t, src, 20)
	s, err := srcredis.Open(ctx, srcredis.Config{Addr: src.Addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := workload(ctx, t, src, 3000, 20, rand.New(rand.NewPCG(3, 4)))
	want, _ := src.Info("replication", "master_repl_offset")
	var txns []*event.Txn
	for {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		txn, err := s.Next(rctx)
		cancel()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if txn.Kind != event.KindHeartbeat {
			txns = append(txns, txn)
		}
		p, _ := srcredis.DecodePosition(txn.Pos)
		if fmt.Sprint(p.Offset) == want {
			break
		}
	}
	t.Logf("%d commands, %d Txns", n, len(txns))
	apply := func(from int) {
		snk, err := sinkredis.Open(ctx, sinkredis.Config{Addr: dst.Addr, Channel: "replay", Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer snk.Close()
		for i := from; i < len(txns); i += 7 {
			if err := snk.Apply(ctx, txns[i:min(i+7, len(txns))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(0)
	waitEqual(t, src, dst, 10*time.Second)
	// Replay everything after the full sync, then a later suffix.
	firstStream := 0
	for i, txn := range txns {
		if p, _ := srcredis.DecodePosition(txn.Pos); !p.Snapshot {
			firstStream = i
			break
		}
	}
	apply(firstStream)
	apply(firstStream + (len(txns)-firstStream)/2)
	waitEqual(t, src, dst, 10*time.Second)
}

func TestLoopGuardDropsOwnSite(t *testing.T) {
	ctx := context.Background()
	dst := harness.RedisServer(t, harness.RedisOptions{})
	snk, err := sinkredis.Open(ctx, sinkredis.Config{Addr: dst.Addr, Channel: "lg", Site: "b", Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer snk.Close()
	pos := redisrepl.EncodePosition(redisrepl.Position{ReplID: strings.Repeat("1", 40), Offset: 10, Epoch: "e:0"})
	mk := func(origin, key string) *event.Txn {
		return &event.Txn{Kind: event.KindDML, Pos: pos, Origin: origin, Changes: []event.Change{{Op: event.OpCommand, Namespace: "0",
			Args: [][]byte{[]byte("SET"), []byte(key), []byte("1")}, Keys: [][]byte{redisrepl.SlotTag([]byte(key))}}}}
	}
	if err := snk.Apply(ctx, []*event.Txn{mk("b", "echo"), mk("a", "fresh")}); err != nil {
		t.Fatal(err)
	}
	c := dst.Client()
	defer c.Close()
	if n, _ := c.Exists(ctx, "echo").Result(); n != 0 {
		t.Error("a Txn from the sink's own site was applied")
	}
	if v, _ := c.Get(ctx, "fresh").Result(); v != "1" {
		t.Error("a Txn from another site was not applied")
	}
	if v, _ := c.Get(ctx, redisrepl.OriginPrefix+"lg:0").Result(); v != "a" {
		t.Errorf("origin marker = %q, want a", v)
	}
}
