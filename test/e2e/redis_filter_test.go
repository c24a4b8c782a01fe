package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
)

// redisFilterYAML is the filter TestRedisFilters runs with: keys a:* and
// b:* except a:tmp:*, source database 0 into target database 2, 1 into 1;
// databases 3 and up are not replicated.
const redisFilterYAML = `  redis:
    include_prefixes: ["a:", "b:"]
    exclude_prefixes: ["a:tmp:"]
    databases: {0: 2, 1: 1}
`

func filterExpected(db int, key string) (string, bool) {
	if strings.HasPrefix(key, "a:tmp:") || !strings.HasPrefix(key, "a:") && !strings.HasPrefix(key, "b:") {
		return "", false
	}
	switch db {
	case 0:
		return "2/" + key, true
	case 1:
		return "1/" + key, true
	}
	return "", false
}

// filteredDiff compares the target with what the filter keeps of the
// source: the same keys (renamed into their target databases), types,
// values (DUMP, or the logical value where encodings differ) and expiry
// times; and nothing else on the target but hamal:*.
func filteredDiff(ctx context.Context, src, dst *harness.Redis) (diffs []string, kept, dropped int, err error) {
	ks, err := src.RedisKeys(ctx, "hamal:")
	if err != nil {
		return nil, 0, 0, err
	}
	kd, err := dst.RedisKeys(ctx, "hamal:")
	if err != nil {
		return nil, 0, 0, err
	}
	want := map[string]string{} // target "db/key" → source "db/key"
	for k := range ks {
		dbs, key, _ := strings.Cut(k, "/")
		db, _ := strconv.Atoi(dbs)
		if to, ok := filterExpected(db, key); ok {
			want[to] = k
		} else {
			dropped++
		}
	}
	for to, from := range want {
		a, b := ks[from], kd[to]
		switch {
		case b.Type == "":
			diffs = append(diffs, fmt.Sprintf("%s (from %s): missing on the target", to, from))
		case a.Type != b.Type:
			diffs = append(diffs, fmt.Sprintf("%s: type %s vs %s", to, a.Type, b.Type))
		case (a.ExpireAt < 0) != (b.ExpireAt < 0) || absDuration(a.ExpireAt-b.ExpireAt) > time.Second:
			diffs = append(diffs, fmt.Sprintf("%s: expire time %d vs %d", to, a.ExpireAt, b.ExpireAt))
		case a.Dump != b.Dump:
			va, errA := src.RedisValue(ctx, from)
			vb, errB := dst.RedisValue(ctx, to)
			if errA != nil || errB != nil || va != vb {
				diffs = append(diffs, fmt.Sprintf("%s: value differs from %s", to, from))
			}
		}
	}
	for k := range kd {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: on the target but not kept by the filter", k))
		}
	}
	sort.Strings(diffs)
	return diffs, len(want), dropped, nil
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func waitFiltered(t *testing.T, src, dst *harness.Redis, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		diffs, kept, dropped, err := filteredDiff(context.Background(), src, dst)
		if err == nil && len(diffs) == 0 {
			if kept == 0 || dropped == 0 {
				t.Fatalf("filter kept %d keys and dropped %d: the workload must have both", kept, dropped)
			}
			t.Logf("target holds exactly the %d keys the filter keeps (in their mapped databases); %d source keys filtered out", kept, dropped)
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatal(err)
			}
			t.Fatalf("target differs from the filtered source after %s:\n%s", timeout, strings.Join(diffs[:min(len(diffs), 20)], "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// filterWorkload writes n commands across the prefixes a:, b:, a:tmp:, x:
// in databases 0, 1 (through redisWorkload) and 3, plus multi-key
// commands that straddle the filter and that it splits (MSET, DEL).
func filterWorkload(t *testing.T, r *harness.Redis, n int, rnd *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	c3 := r.ClientDB(3)
	defer c3.Close()
	c0 := r.ClientDB(0)
	defer c0.Close()
	prefixes := []string{"a:", "b:", "a:tmp:", "x:"}
	for sent := 0; sent < n; sent += 200 {
		p := prefixes[rnd.IntN(len(prefixes))]
		redisWorkload(t, r, p, 150, rnd)
		for i := 0; i < 25; i++ {
			k := strconv.Itoa(rnd.IntN(200))
			if err := c3.Incr(ctx, "a:"+k).Err(); err != nil {
				t.Fatal(err)
			}
		}
		k := strconv.Itoa(rnd.IntN(100))
		if err := c0.MSet(ctx, "a:m"+k, sent, "x:m"+k, sent, "b:m"+k, sent, "a:tmp:m"+k, sent).Err(); err != nil {
			t.Fatal(err)
		}
		if rnd.IntN(3) == 0 {
			if err := c0.Del(ctx, "x:m"+k, "a:m"+k, "a:tmp:m"+k).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestRedisFilters: prefix filters and a database mapping over a full sync
// and a stream with two SIGKILLs; the target holds exactly the kept keys,
// in their mapped databases, with the source's values and expiry times
// (non-idempotent commands included: the per-(database, slot) fences of
// the mapped databases keep the replay exactly-once). Then a RENAME across
// the filter stops the channel with an error naming it, and the
// checkpoint stays before it.
func TestRedisFilters(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src := harness.RedisServer(t, harness.RedisOptions{})
	dst := harness.RedisServer(t, harness.RedisOptions{})
	ctx := context.Background()
	for _, prefix := range []string{"a:", "b:", "x:", "a:tmp:"} {
		seedRedis(t, src, prefix, 400)
	}
	c3 := src.ClientDB(3)
	defer c3.Close()
	if err := c3.Set(ctx, "a:seed3", "db3", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ch := newRedisChannel(t, src, dst, redisChannelOpts{name: "redis-filter", sourceExtra: redisFilterYAML})
	p := ch.startRunning(t)
	waitFiltered(t, src, dst, 60*time.Second)

	seed := uint64(time.Now().UnixNano())
	t.Logf("workload seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 3))
	done := make(chan struct{})
	go func() {
		defer close(done)
		filterWorkload(t, src, 12000, rand.New(rand.NewPCG(seed, 4)))
	}()
	for kill := 0; kill < 2; kill++ {
		time.Sleep(time.Duration(400+rnd.IntN(1200)) * time.Millisecond)
		p.kill(t)
		t.Logf("killed hamal (kill %d)", kill+1)
		p = ch.startRunning(t)
	}
	<-done
	waitFiltered(t, src, dst, 120*time.Second)
	if full := infoInt(t, src, "stats", "sync_full"); full != 1 {
		t.Errorf("master did %d full syncs, want 1", full)
	}
	fields, err := dst.Client().HKeys(ctx, "hamal:offset:redis-filter").Result()
	if err != nil {
		t.Fatal(err)
	}
	perDB := map[string]int{}
	for _, f := range fields {
		db, _, _ := strings.Cut(f, "/")
		perDB[db]++
	}
	if perDB["2"] == 0 || perDB["1"] == 0 || perDB["0"] != 0 || perDB["3"] != 0 {
		t.Errorf("offset fences by target database: %v; want fences in 2 and 1 only", perDB)
	}

	// A command that straddles the filter cannot be half-applied. a:m1 is
	// written first and waited for on the target, so that its absence
	// afterwards could only come from a half-applied RENAME.
	c0 := src.ClientDB(0)
	defer c0.Close()
	if err := c0.Set(ctx, "a:m1", "before-rename", 0).Err(); err != nil {
		t.Fatal(err)
	}
	t2 := dst.ClientDB(2)
	defer t2.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if v, _ := t2.Get(ctx, "a:m1").Result(); v == "before-rename" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a:m1 did not reach target database 2")
		}
	}
	if err := c0.Rename(ctx, "a:m1", "x:renamed").Err(); err != nil {
		t.Fatal(err)
	}
	st := ch.waitState(t, 30*time.Second, func(st pipeline.Status) bool { return st.State == pipeline.StateError })
	if !strings.Contains(st.LastError, "RENAME") || !strings.Contains(st.LastError, `"a:m1"`) || !strings.Contains(st.LastError, `"x:renamed"`) {
		t.Errorf("channel error %q does not name RENAME and both keys", st.LastError)
	}
	p.kill(t)
	if v, _ := t2.Get(ctx, "a:m1").Result(); v != "before-rename" {
		t.Errorf("a:m1 is gone from target database 2: the refused RENAME was half-applied")
	}
}
