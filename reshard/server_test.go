package reshard

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	enginemysql "github.com/hamal-replication/hamal/engine/mysql"
	"github.com/hamal-replication/hamal/tablecopy"
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
	c, err := dial(ctx, "sources[0]", Server{Conn: enginemysql.Conn{Addr: srv.Addr, User: "root"}})
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

// TestKeysetWalksCompositeKey walks a table with a composite primary key
// in small keyset chunks, as the copy and verify do, and checks every row
// is met exactly once, in key order, and that the chunk query is an index
// range (not a scan from the table's start).
func TestKeysetWalksCompositeKey(t *testing.T) {
	srv := harness.MariaDB(t, harness.Options{ServerID: 53})
	srv.MustExec(t, "CREATE DATABASE r", "CREATE TABLE r.c (tenant VARCHAR(10) NOT NULL, id INT NOT NULL, v INT, PRIMARY KEY (tenant, id))",
		"INSERT INTO r.c SELECT CONCAT('t', seq % 7), seq DIV 7, seq FROM r.seq_1_to_3000")
	ctx := context.Background()
	c, err := dial(ctx, "sources[0]", Server{Conn: enginemysql.Conn{Addr: srv.Addr, User: "root"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := describe(c, &Table{Name: "r.c", RuleSpec: RuleSpec{ShardKey: "v"}})
	if err != nil {
		t.Fatal(err)
	}
	k := info.table.Key
	if k.List() != "`tenant`,`id`" || k.Ints() {
		t.Fatalf("describe: key %+v", k)
	}
	var last []string
	seen := map[string]bool{}
	var prev string
	for n := 0; ; n++ {
		q := "SELECT " + k.List() + " FROM r.c" + k.RangeWhere(last, nil) + " ORDER BY " + k.List() + " LIMIT 97"
		if n == 1 {
			r, err := c.Execute("EXPLAIN " + q)
			if err != nil {
				t.Fatal(err)
			}
			if typ, _ := r.GetStringByName(0, "type"); typ != "range" {
				t.Errorf("chunk query is not an index range (type %q): %s", typ, q)
			}
		}
		r, err := c.Execute(q)
		if err != nil {
			t.Fatal(err)
		}
		for i := range r.Values {
			vals := k.Values(r.Values[i], false)
			key := tablecopy.ShowKey(vals)
			if seen[key] {
				t.Fatalf("key %s met twice", key)
			}
			seen[key] = true
			sortable := fmt.Sprintf("%s/%08s", vals[0], vals[1])
			if sortable <= prev {
				t.Fatalf("key %s out of order after %s", sortable, prev)
			}
			prev = sortable
			last = vals
		}
		if len(r.Values) < 97 {
			break
		}
	}
	if len(seen) != 3000 {
		t.Fatalf("keyset walk met %d rows of 3000", len(seen))
	}
	// (lo, hi] chunks partition the keys: two halves count the whole.
	mid := []string{"t3", "200"}
	lo := srv.MustQuery(t, "SELECT COUNT(*) FROM r.c"+k.RangeWhere(nil, mid))[0][0]
	hi := srv.MustQuery(t, "SELECT COUNT(*) FROM r.c"+k.RangeWhere(mid, nil))[0][0]
	want := srv.MustQuery(t, "SELECT SUM((tenant, id) <= ('t3', 200)), SUM((tenant, id) > ('t3', 200)) FROM r.c")[0]
	if lo != want[0] || hi != want[1] {
		t.Fatalf("(-inf, %v] has %s rows and the rest %s; row comparison says %s and %s", mid, lo, hi, want[0], want[1])
	}
}

// TestCopyCompositeKey copies a table with a composite key (sharded by a
// column outside it) to two targets through runCopy; then rewinds a
// segment to a saved key and checks the copy resumes exactly after it.
func TestCopyCompositeKey(t *testing.T) {
	src := harness.MariaDB(t, harness.Options{ServerID: 54})
	dst := []*harness.Server{harness.MariaDB(t, harness.Options{ServerID: 55}), harness.MariaDB(t, harness.Options{ServerID: 56})}
	src.MustExec(t, "CREATE DATABASE r", "CREATE TABLE r.c (tenant VARBINARY(10) NOT NULL, id INT NOT NULL, v INT NOT NULL, pad VARCHAR(50), PRIMARY KEY (tenant, id))",
		"INSERT INTO r.c SELECT CONCAT(CHAR(250), 't', seq % 7), seq DIV 7, seq, REPEAT('x', seq % 50) FROM r.seq_1_to_2000")
	plan := fmt.Sprintf("name: c\nstate_dir: %s\nsources:\n  - {addr: %s, user: root, server_id: 4301}\ntargets:\n  - {addr: %s, user: root}\n  - {addr: %s, user: root}\n"+
		"tables:\n  - {name: r.c, shard_key: v, rule: hash}\ncopy: {workers: 2, chunk_rows: 300}\n", t.TempDir(), src.Addr, dst[0].Addr, dst[1].Addr)
	p, err := Parse([]byte(plan))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	if m.infos, err = Preflight(ctx, p); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	err = m.snapshot(ctx)
	m.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.runCopy(ctx); err != nil {
		t.Fatal(err)
	}
	sum := "SELECT COUNT(*), IFNULL(SUM(CRC32(CONCAT_WS('|', HEX(tenant), id, v, pad))), 0) FROM r.c"
	check := func(where string) {
		t.Helper()
		want := src.MustQuery(t, sum+where)[0]
		var n, x int64
		for j, d := range dst {
			got := d.MustQuery(t, sum)[0]
			var a, b int64
			fmt.Sscan(got[0], &a)
			fmt.Sscan(got[1], &b)
			n, x = n+a, x+b
			if wrong := d.MustQuery(t, fmt.Sprintf("SELECT COUNT(*) FROM r.c WHERE CRC32(v) %% 2 != %d", j))[0][0]; wrong != "0" {
				t.Errorf("target %d holds %s rows of the other shard", j, wrong)
			}
		}
		if fmt.Sprint(n) != want[0] || fmt.Sprint(x) != want[1] {
			t.Fatalf("targets hold %d rows (sum %d); the source%s %s (sum %s)", n, x, where, want[0], want[1])
		}
	}
	check("")
	// Rewind: the only segment (non-integer first column) restarts after
	// a saved binary key; the targets are emptied, so what they hold
	// afterwards is exactly what the resumed copy wrote.
	var key string
	for k := range m.st.Segments {
		key = k
	}
	last := src.MustQuery(t, "SELECT HEX(tenant), id FROM r.c ORDER BY tenant, id LIMIT 1 OFFSET 999")[0]
	tenant, _ := hex.DecodeString(last[0])
	seg := m.st.Segments[key]
	seg.LastKey, seg.Begun, seg.Done = [][]byte{tenant, []byte(last[1])}, true, false
	for _, d := range dst {
		d.MustExec(t, "DELETE FROM r.c")
	}
	if err := m.runCopy(ctx); err != nil {
		t.Fatal(err)
	}
	check(fmt.Sprintf(" WHERE (tenant, id) > (X'%s', %s)", last[0], last[1]))
}
