package reshard

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/test/harness"
)

// TestRulesAgreeWithSQL checks that each rule's Go routing and its SQL
// predicate (what verify uses on the targets) agree, row by row, on a real
// server: the hash really is MariaDB's CRC32(col) % N.
func TestRulesAgreeWithSQL(t *testing.T) {
	srv := harness.MariaDB(t, harness.Options{ServerID: 51})
	srv.MustExec(t, "CREATE DATABASE r", "CREATE TABLE r.t (id BIGINT PRIMARY KEY, s VARCHAR(20) NOT NULL)",
		"INSERT INTO r.t SELECT CAST(seq AS SIGNED) - 500, CONCAT('k', seq % 13) FROM r.seq_1_to_2000")
	p, err := planWith(t, `  - {name: r.t, shard_key: id, rule: hash}
  - {name: r.u, shard_key: id, rule: range, ranges: [{shard: 0, to: -10}, {shard: 2, from: -10, to: 700}, {shard: 1, from: 700}]}
  - {name: r.v, shard_key: s, rule: list, lists: {0: [k1, k2], 1: [k3]}, default: 2}
`, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ table, col string }{{"r.t", "id"}, {"r.u", "id"}, {"r.v", "s"}} {
		rule := p.Table(tc.table).Router()
		rows := srv.MustQuery(t, "SELECT "+tc.col+" FROM r.t")
		want := map[int]int{}
		for _, r := range rows {
			s, err := rule.Shard([]byte(r[0]))
			if err != nil {
				t.Fatalf("%s: Shard(%s): %v", tc.table, r[0], err)
			}
			want[s]++
		}
		for shard := 0; shard < 3; shard++ {
			q := fmt.Sprintf("SELECT COUNT(*) FROM r.t WHERE %s", rule.Predicate(quoteIdent(tc.col), shard))
			got := srv.MustQuery(t, q)[0][0]
			if got != fmt.Sprint(want[shard]) {
				t.Errorf("%s shard %d: SQL predicate counts %s rows, Go routes %d (%s)", tc.table, shard, got, want[shard], q)
			}
		}
	}
}

// TestThrottleReadsSourceLoad: Threads_running above the limit pauses.
func TestThrottleReadsSourceLoad(t *testing.T) {
	srv := harness.MariaDB(t, harness.Options{ServerID: 52})
	ctx := context.Background()
	c, err := dial(ctx, "sources[0]", Server{Addr: srv.Addr, User: "root"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if over, err := overloaded(c, Copy{MaxThreadsRunning: 10}); err != nil || over {
		t.Fatalf("idle server: overloaded %v, %v", over, err)
	}
	busy := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { busy <- srv.Exec("SELECT SLEEP(3)") }()
	}
	err = harness.WaitFor(ctx, 10*time.Second, func() (bool, error) { return overloaded(c, Copy{MaxThreadsRunning: 2}) })
	if err != nil {
		t.Fatalf("two sleeping queries did not count as load: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := <-busy; err != nil {
			t.Fatal(err)
		}
	}
	// A server that is not a replica has no replica lag.
	if over, err := overloaded(c, Copy{MaxReplicaLag: time.Second}); err != nil || over {
		t.Fatalf("replica lag on a primary: %v, %v", over, err)
	}
}
