package e2e

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/reshard"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

// migration is one plan on disk and its admin address.
type migration struct {
	path  string
	admin string
}

func writePlan(t *testing.T, name string, sources, targets []*harness.Server, tables, extra string) *migration {
	t.Helper()
	dir := t.TempDir()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nstate_dir: %s\nadmin:\n  listen: 127.0.0.1:%d\nsources:\n", name, filepath.Join(dir, "state"), port)
	for _, s := range sources {
		fmt.Fprintf(&b, "  - {addr: %s, user: root, password: \"\", server_id: 4301}\n", s.Addr)
	}
	b.WriteString("targets:\n")
	for _, s := range targets {
		fmt.Fprintf(&b, "  - {addr: %s, user: root}\n", s.Addr)
	}
	b.WriteString("tables:\n" + tables + extra)
	m := &migration{path: filepath.Join(dir, "plan.yaml"), admin: fmt.Sprintf("127.0.0.1:%d", port)}
	if err := os.WriteFile(m.path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *migration) start(t *testing.T) *proc {
	t.Helper()
	return spawnHamal(t, "hamal migrate", "migrate", "start", "--plan", m.path)
}

func (m *migration) status() (reshard.Status, error) {
	var st reshard.Status
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + m.admin + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (m *migration) waitStatus(t *testing.T, p *proc, timeout time.Duration, what string, pred func(reshard.Status) bool) reshard.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last reshard.Status
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("hamal migrate exited while waiting for %s: %v\n%s", what, p.err, lastLines(p.out.String(), 40))
		default:
		}
		st, err := m.status()
		if err == nil {
			if pred(st) {
				return st
			}
			last = st
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: timed out after %s; last status %+v", what, timeout, last)
	return last
}

// writer runs random inserts, updates (some moving a row to another shard
// by changing its key) and deletes on the source until stopped.
type writer struct {
	stop  chan struct{}
	done  chan struct{}
	ops   atomic.Int64
	errMu sync.Mutex
	err   error
}

func startWriter(t *testing.T, src *harness.Server, table string, maxID int64, seed int64) *writer {
	t.Helper()
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	c, err := src.Connect("")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		defer c.Close()
		rnd := rand.New(rand.NewSource(seed))
		next := maxID + 1
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			id := rnd.Int63n(maxID) + 1
			var q string
			switch rnd.Intn(5) {
			case 0, 1:
				q = fmt.Sprintf("INSERT INTO %s (id, k, c, pad) VALUES (%d, %d, 'new-%d', 'w')", table, next, rnd.Intn(1000), next)
				next++
			case 2:
				q = fmt.Sprintf("UPDATE %s SET k = k + 1, c = CONCAT('u-', c) WHERE id = %d", table, id)
			case 3:
				q = fmt.Sprintf("DELETE FROM %s WHERE id = %d", table, id)
			case 4: // a PK change moves the row to the shard of its new key
				q = fmt.Sprintf("UPDATE IGNORE %s SET id = id + 50000000 WHERE id = %d", table, id)
			}
			if _, err := c.Execute(q); err != nil {
				w.errMu.Lock()
				w.err = err
				w.errMu.Unlock()
				return
			}
			w.ops.Add(1)
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *writer) check(t *testing.T) {
	t.Helper()
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
}

// rowHashes returns id → MD5 of the row's hex-encoded columns.
func rowHashes(t *testing.T, s *harness.Server, table string) map[string]string {
	t.Helper()
	rows := s.MustQuery(t, "SELECT id, MD5(CONCAT_WS('|', id, k, c, pad, IFNULL(HEX(b),'N'))) FROM "+table)
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r[0]] = r[1]
	}
	return out
}

// assertUnion checks, independently of verify, that the targets together
// hold exactly the sources' rows, each on the target shardOf names.
func assertUnion(t *testing.T, sources []*harness.Server, srcTable string, targets []*harness.Server, dstTable string, shardOf func(id string) int) {
	t.Helper()
	want := map[string]string{}
	for _, s := range sources {
		for k, v := range rowHashes(t, s, srcTable) {
			want[k] = v
		}
	}
	got := map[string]string{}
	wrong := 0
	for j, s := range targets {
		for k, v := range rowHashes(t, s, dstTable) {
			if _, dup := got[k]; dup {
				t.Errorf("id %s is on more than one target", k)
			}
			got[k] = v
			if shardOf(k) != j {
				wrong++
				if wrong < 5 {
					t.Errorf("id %s is on target %d, the rule names %d", k, j, shardOf(k))
				}
			}
		}
	}
	diff := 0
	for k, v := range want {
		if got[k] != v {
			diff++
			if diff < 5 {
				t.Errorf("id %s: source %s, targets %q", k, v, got[k])
				if os.Getenv("HAMAL_DEBUG") != "" {
					for _, s := range sources {
						t.Logf("source %v", s.MustQuery(t, "SELECT id,k,HEX(c),pad,HEX(b) FROM "+srcTable+" WHERE id="+k))
					}
					for _, s := range targets {
						t.Logf("target %v", s.MustQuery(t, "SELECT id,k,HEX(c),pad,HEX(b) FROM "+dstTable+" WHERE id="+k))
					}
				}
			}
		}
	}
	if len(got) != len(want) || diff > 0 || wrong > 0 {
		t.Fatalf("targets hold %d rows, sources %d; %d differ; %d on the wrong shard", len(got), len(want), diff, wrong)
	}
	t.Logf("targets hold the sources' %d rows, each on its rule's shard", len(want))
}

// assertOrders checks app.orders (composite key tenant, id) like
// assertUnion: the targets hold exactly the source's rows, each on the
// shard CRC32(user_id) % 4 names.
func assertOrders(t *testing.T, src *harness.Server, targets []*harness.Server) {
	t.Helper()
	q := "SELECT CONCAT(tenant, '/', id), MD5(CONCAT_WS('|', tenant, id, user_id, IFNULL(amount, 'N'))), user_id FROM app.orders"
	want := map[string]string{}
	for _, r := range src.MustQuery(t, q) {
		want[r[0]] = r[1]
	}
	got := 0
	for j, tg := range targets {
		for _, r := range tg.MustQuery(t, q) {
			got++
			if want[r[0]] != r[1] {
				t.Errorf("orders %s on target %d: %s, source %q", r[0], j, r[1], want[r[0]])
			}
			if s := crcShard(4)(r[2]); s != j {
				t.Errorf("orders %s (user_id %s) is on target %d, the rule names %d", r[0], r[2], j, s)
			}
		}
	}
	if got != len(want) {
		t.Fatalf("targets hold %d orders rows, the source %d", got, len(want))
	}
}

const usersDDL = "CREATE TABLE app.users (id BIGINT PRIMARY KEY, k INT NOT NULL, c VARCHAR(120) NOT NULL, pad VARCHAR(60) NOT NULL, b BLOB NULL, KEY (k))"

func seedUsers(t *testing.T, s *harness.Server, from, to int64) {
	t.Helper()
	s.MustExec(t, "CREATE DATABASE IF NOT EXISTS app", usersDDL,
		fmt.Sprintf("INSERT INTO app.users (id, k, c, pad, b) SELECT seq, seq %% 1000, CONCAT('row-', seq, '-é'), REPEAT('p', 40), IF(seq %% 7 = 0, UNHEX('00FF27'), NULL) FROM app.seq_%d_to_%d", from, to))
}

func crcShard(n int) func(string) int {
	return func(id string) int { return int(crc32.ChecksumIEEE([]byte(id)) % uint32(n)) }
}

// TestMigrateSplitHash splits one shard into four by hash while the
// application writes, surviving kill -9 during the copy and during the
// catch-up; verify finds nothing, then a corrupted target row; cut-over,
// writes on the targets, and cancel rolls them back to the source.
func TestMigrateSplitHash(t *testing.T) {
	// 200k rows with HAMAL_LONG=1; fewer by default to keep make test
	// reasonable on a small machine (the code path is the same).
	rows := int64(40000)
	if long() {
		rows = 200000
	}
	src := harness.MariaDB(t, harness.Options{ServerID: 1})
	var targets []*harness.Server
	for i := 0; i < 4; i++ {
		targets = append(targets, harness.MariaDB(t, harness.Options{ServerID: 11 + i}))
	}
	seedUsers(t, src, 1, rows)
	// A composite primary key, sharded by a column outside it.
	src.MustExec(t, "CREATE TABLE app.orders (tenant VARCHAR(8) NOT NULL, id INT NOT NULL, user_id BIGINT NOT NULL, amount DECIMAL(10,2), PRIMARY KEY (tenant, id))",
		"INSERT INTO app.orders SELECT CONCAT('t', seq % 5), seq DIV 5, seq % 997, seq / 100 FROM app.seq_1_to_3000")
	m := writePlan(t, "split", []*harness.Server{src}, targets,
		"  - {name: app.users, shard_key: id, rule: hash}\n  - {name: app.orders, shard_key: user_id, rule: hash}\n",
		"copy: {workers: 4, chunk_rows: 1000, max_rows_per_second: 20000}\nverify: {chunk_rows: 5000, recheck_delay: 500ms}\ncutover: {timeout: 60s}\n")

	w := startWriter(t, src, "app.users", rows, 1)
	p := m.start(t)
	m.waitStatus(t, p, 60*time.Second, "copy under way", func(st reshard.Status) bool {
		return st.Phase == reshard.PhaseCopy && st.RowsCopied >= rows/5
	})
	p.kill(t) // kill -9 during the copy
	w.check(t)

	p = m.start(t)
	st := m.waitStatus(t, p, 120*time.Second, "catch-up running", func(st reshard.Status) bool {
		return st.Phase == reshard.PhaseCatchup && len(st.Channels) == 1 && st.Channels[0].AppliedTxns > 50
	})
	if st.RowsCopied < rows {
		t.Fatalf("copy finished with %d rows copied, source had %d before the writes", st.RowsCopied, rows)
	}
	p.kill(t) // kill -9 during the catch-up
	w.check(t)

	p = m.start(t)
	m.waitStatus(t, p, 60*time.Second, "catch-up running again", func(st reshard.Status) bool {
		return st.Phase == reshard.PhaseCatchup && len(st.Channels) == 1 && st.Channels[0].State == "running"
	})
	time.Sleep(500 * time.Millisecond) // some writes after the restart
	// Orders change shard (user_id is the shard key, outside the key).
	src.MustExec(t, "UPDATE app.orders SET user_id = user_id + 1 WHERE id % 10 = 0",
		"DELETE FROM app.orders WHERE id % 17 = 0",
		"INSERT INTO app.orders SELECT 't9', seq, seq * 7, 1.5 FROM app.seq_1_to_50")
	// DDL during the catch-up goes to every target.
	src.MustExec(t, "ALTER TABLE app.users ADD COLUMN note VARCHAR(10) NULL DEFAULT 'n'")
	w.halt()
	w.check(t)
	t.Logf("writer made %d changes during copy and catch-up", w.ops.Load())

	verify := func() *reshard.VerifyReport {
		t.Helper()
		before := time.Now().UTC()
		if out, code := hamalCmd(t, "migrate", "verify", "--no-wait", "--plan", m.path); code != 0 {
			// The automatic verify may still be running; wait for it.
			if !strings.Contains(out, "already running") {
				t.Fatalf("migrate verify: exit %d: %s", code, out)
			}
			m.waitStatus(t, p, 120*time.Second, "automatic verify", func(st reshard.Status) bool { return !st.Verifying })
			before = time.Now().UTC()
			if out, code := hamalCmd(t, "migrate", "verify", "--no-wait", "--plan", m.path); code != 0 {
				t.Fatalf("migrate verify: exit %d: %s", code, out)
			}
		}
		st := m.waitStatus(t, p, 180*time.Second, "verify", func(st reshard.Status) bool {
			return !st.Verifying && st.Verify != nil && st.Verify.StartedAt.After(before)
		})
		return st.Verify
	}
	rep := verify()
	if rep.Mismatches != 0 || rep.WrongShard != 0 || len(rep.Tables) != 2 || rep.Tables[0].Rows < rows/2 || rep.Tables[1].Rows < 2800 {
		t.Fatalf("verify after catch-up: %+v", rep)
	}
	t.Logf("verify: %d chunks, %d rows, no mismatch", rep.Tables[0].Chunks, rep.Tables[0].Rows)
	assertUnion(t, []*harness.Server{src}, "app.users", targets, "app.users", crcShard(4))
	assertOrders(t, src, targets)
	for j, tg := range targets {
		if n := tg.MustQuery(t, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='app' AND TABLE_NAME='users' AND COLUMN_NAME='note'")[0][0]; n != "1" {
			t.Errorf("target %d lacks the column the source added during the catch-up", j)
		}
	}

	// Corrupt one row on its target, behind the migration's back: verify
	// names its key.
	victim := src.MustQuery(t, "SELECT id FROM app.users ORDER BY id LIMIT 1 OFFSET 777")[0][0]
	shard := crcShard(4)(victim)
	targets[shard].MustExec(t, "UPDATE app.users SET c = 'corrupted' WHERE id = "+victim)
	rep = verify()
	if rep.Mismatches != 1 || rep.Tables[0].Mismatched[0].Key != victim || rep.Tables[0].Mismatched[0].Kind != "differs" || rep.Tables[0].Mismatched[0].Target != shard {
		t.Fatalf("verify after corrupting id %s on target %d: %+v", victim, shard, rep.Tables[0].Mismatched)
	}
	out, _ := hamalCmd(t, "migrate", "status", "--plan", m.path)
	if !strings.Contains(out, "key "+victim+": differs") {
		t.Errorf("status does not show the corrupted key %s:\n%s", victim, out)
	}
	targets[shard].MustExec(t, "UPDATE app.users SET c = (SELECT 'x') WHERE id = "+victim) // keep it wrong; rollback below does not need it

	// Cut over, write on the targets, roll back through reverse replication.
	if out, code := hamalCmd(t, "migrate", "cutover", "--plan", m.path); code != 0 {
		t.Fatalf("migrate cutover: exit %d: %s", code, out)
	}
	if ro := src.MustQuery(t, "SELECT @@read_only")[0][0]; ro != "1" {
		t.Fatalf("source read_only = %s after cut-over; want 1", ro)
	}
	var newIDs []string
	for i := int64(0); i < 40; i++ {
		id := strconv.FormatInt(900000000+i, 10)
		newIDs = append(newIDs, id)
		targets[crcShard(4)(id)].MustExec(t, fmt.Sprintf("INSERT INTO app.users (id, k, c, pad) VALUES (%s, 1, 'after-cutover', 'x')", id))
	}
	moved := src.MustQuery(t, "SELECT id FROM app.users ORDER BY id LIMIT 1 OFFSET 1234")[0][0]
	targets[crcShard(4)(moved)].MustExec(t, "UPDATE app.users SET c = 'updated-on-target' WHERE id = "+moved)
	if out, code := hamalCmd(t, "migrate", "cancel", "--plan", m.path); code != 0 {
		t.Fatalf("migrate cancel (rollback): exit %d: %s", code, out)
	}
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("hamal migrate exited %d after cancel", code)
	}
	if n := src.MustQuery(t, "SELECT COUNT(*) FROM app.users WHERE c = 'after-cutover' AND id IN ("+strings.Join(newIDs, ",")+")")[0][0]; n != "40" {
		t.Fatalf("source holds %s of the 40 rows written on the targets after cut-over", n)
	}
	if c := src.MustQuery(t, "SELECT c FROM app.users WHERE id = "+moved)[0][0]; c != "updated-on-target" {
		t.Fatalf("update on the target after cut-over did not reach the source: c = %q", c)
	}
	if ro := src.MustQuery(t, "SELECT @@read_only")[0][0]; ro != "0" {
		t.Fatalf("source read_only = %s after rollback; want 0", ro)
	}
	out, _ = hamalCmd(t, "migrate", "status", "--plan", m.path)
	if !strings.Contains(out, "phase cancelled") || !strings.Contains(out, "rolled back") {
		t.Errorf("status after rollback:\n%s", out)
	}
}

// TestMigrateMergeRangeRename merges four shards into one by range,
// renaming the table, while one source takes writes; then cuts over,
// writes on the target, sees reverse replication route those rows to the
// sources by the sources' own rule (source_rule), and rolls back.
func TestMigrateMergeRangeRename(t *testing.T) {
	var sources []*harness.Server
	for i := 0; i < 4; i++ {
		s := harness.MariaDB(t, harness.Options{ServerID: 21 + i})
		seedUsers(t, s, int64(i)*1000000+1, int64(i)*1000000+5000)
		sources = append(sources, s)
	}
	target := harness.MariaDB(t, harness.Options{ServerID: 31})
	m := writePlan(t, "merge", sources, []*harness.Server{target},
		"  - {name: app.users, shard_key: id, rule: range, ranges: [{shard: 0}], rename: merged.people,\n"+
			// The writer's PK changes move rows of source 0 to id+50000000,
			// so source 0 owns that range too.
			"     source_rule: {shard_key: id, rule: range, ranges: [{shard: 0, to: 1000000}, {shard: 1, from: 1000000, to: 2000000},\n"+
			"       {shard: 2, from: 2000000, to: 3000000}, {shard: 3, from: 3000000, to: 50000000}, {shard: 0, from: 50000000}]}}\n",
		"copy: {workers: 2, chunk_rows: 500}\nverify: {chunk_rows: 2000, recheck_delay: 500ms}\ncutover: {timeout: 60s}\n")
	w := startWriter(t, sources[0], "app.users", 5000, 2)
	p := m.start(t)
	m.waitStatus(t, p, 90*time.Second, "catch-up running", func(st reshard.Status) bool {
		return st.Phase == reshard.PhaseCatchup && len(st.Channels) == 4
	})
	time.Sleep(500 * time.Millisecond)
	w.halt()
	w.check(t)
	m.waitStatus(t, p, 120*time.Second, "automatic verify", func(st reshard.Status) bool { return !st.Verifying && st.Verify != nil })
	if out, code := hamalCmd(t, "migrate", "verify", "--no-wait", "--plan", m.path); code != 0 {
		t.Fatalf("migrate verify: exit %d: %s", code, out)
	}
	before := time.Now().UTC().Add(-time.Second)
	st := m.waitStatus(t, p, 120*time.Second, "verify", func(st reshard.Status) bool {
		return !st.Verifying && st.Verify != nil && st.Verify.StartedAt.After(before)
	})
	if st.Verify.Mismatches != 0 || st.Verify.WrongShard != 0 || st.Verify.Tables[0].Rows < 20000 {
		t.Fatalf("verify of the merge: %+v", st.Verify)
	}
	assertUnion(t, sources, "app.users", []*harness.Server{target}, "merged.people", func(string) int { return 0 })
	if out, code := hamalCmd(t, "migrate", "cutover", "--plan", m.path); code != 0 {
		t.Fatalf("migrate cutover: exit %d: %s", code, out)
	}
	for i, s := range sources {
		if ro := s.MustQuery(t, "SELECT @@read_only")[0][0]; ro != "1" {
			t.Errorf("source %d read_only = %s after cut-over", i, ro)
		}
	}
	// Writes on the target after the cut-over reach the source the
	// sources' own rule (source_rule) names, and no other.
	owner := func(id int64) int {
		if id >= 50000000 {
			return 0
		}
		return int(min(id/1000000, 3))
	}
	var ids []int64
	for i := int64(0); i < 4; i++ {
		ids = append(ids, i*1000000+900000+i, i*1000000+900100+i)
	}
	ids = append(ids, 60000001)
	for _, id := range ids {
		target.MustExec(t, fmt.Sprintf("INSERT INTO merged.people (id, k, c, pad) VALUES (%d, 1, 'after-cutover', 'x')", id))
	}
	target.MustExec(t, "UPDATE merged.people SET c = 'updated-on-target' WHERE id = 2000010",
		"DELETE FROM merged.people WHERE id = 3000020")
	reached := func() (bool, error) {
		for i, s := range sources {
			n := s.MustQuery(t, "SELECT COUNT(*) FROM app.users WHERE c IN ('after-cutover', 'updated-on-target')")[0][0]
			want := 2
			if i == 0 {
				want = 3
			}
			if i == 2 {
				want = 3
			}
			if n != strconv.Itoa(want) {
				return false, nil
			}
		}
		return sources[3].MustQuery(t, "SELECT COUNT(*) FROM app.users WHERE id = 3000020")[0][0] == "0", nil
	}
	if err := harness.WaitFor(t.Context(), 60*time.Second, reached); err != nil {
		t.Fatalf("writes on the target after cut-over did not reach the sources: %v", err)
	}
	for _, id := range ids {
		for i, s := range sources {
			n := s.MustQuery(t, fmt.Sprintf("SELECT COUNT(*) FROM app.users WHERE id = %d AND c = 'after-cutover'", id))[0][0]
			if want := map[bool]string{true: "1", false: "0"}[owner(id) == i]; n != want {
				t.Errorf("row %d: %s copies on source %d; the source rule names source %d", id, n, i, owner(id))
			}
		}
	}
	if out, code := hamalCmd(t, "migrate", "cancel", "--plan", m.path); code != 0 {
		t.Fatalf("migrate cancel (rollback of a merge): exit %d: %s", code, out)
	}
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("hamal migrate exited %d after cancel", code)
	}
	for i, s := range sources {
		if ro := s.MustQuery(t, "SELECT @@read_only")[0][0]; ro != "0" {
			t.Errorf("source %d read_only = %s after rollback; want 0 (primary again)", i, ro)
		}
	}
	if ro := target.MustQuery(t, "SELECT @@read_only")[0][0]; ro != "1" {
		t.Errorf("target read_only = %s after rollback; want 1", ro)
	}
	state, err := reshard.LoadState(filepath.Join(filepath.Dir(m.path), "state"), "merge")
	if err != nil {
		t.Fatal(err)
	}
	if state.Phase != reshard.PhaseCancelled || len(state.Sources) != 4 || state.Sources[3].Final == "" || !strings.Contains(state.Record, "rolled back") {
		t.Fatalf("state after rollback: phase %s, sources %+v, record %q", state.Phase, state.Sources, state.Record)
	}
	// Started again, an ended migration does nothing and says so.
	p = m.start(t)
	if code := p.wait(t, 30*time.Second); code != 0 || !strings.Contains(p.out.String(), "already ended") {
		t.Fatalf("restart after complete: exit %d: %s", code, p.out.String())
	}
}

// TestMigrateBadInput: plans that cannot work are refused with an error
// naming the problem before any data moves.
func TestMigrateBadInput(t *testing.T) {
	src := harness.MariaDB(t, harness.Options{ServerID: 41})
	dst := harness.MariaDB(t, harness.Options{ServerID: 42})
	src.MustExec(t, "CREATE DATABASE app", "CREATE TABLE app.geo (id INT PRIMARY KEY, country CHAR(2) NOT NULL)",
		"INSERT INTO app.geo VALUES (1,'us'),(2,'de'),(3,'zz')")
	port, _ := harness.FreePort()
	dead := &harness.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	cases := []struct {
		name    string
		targets []*harness.Server
		table   string
		code    int
		want    string
	}{
		{"range gap", []*harness.Server{dst, dst}, "  - {name: app.geo, shard_key: id, rule: range, ranges: [{shard: 0, to: 10}, {shard: 1, from: 20}]}\n",
			2, "keys from 10 to 20 uncovered"},
		{"list leaves a value uncovered", []*harness.Server{dst}, "  - {name: app.geo, shard_key: country, rule: list, lists: {0: [us, de]}}\n",
			1, `shard-key value(s) "zz" uncovered`},
		{"missing shard-key column", []*harness.Server{dst}, "  - {name: app.geo, shard_key: user_id, rule: hash}\n",
			1, `has no shard-key column "user_id"`},
		{"missing table", []*harness.Server{dst}, "  - {name: app.nope, shard_key: id, rule: hash}\n",
			1, "table app.nope: does not exist"},
		{"unreachable target", []*harness.Server{dst, dead}, "  - {name: app.geo, shard_key: id, rule: hash}\n",
			1, "targets[1] " + dead.Addr + ": cannot connect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.targets) == 2 && c.targets[0] == c.targets[1] {
				c.targets = []*harness.Server{dst, {Addr: "127.0.0.2:3306"}}
			}
			m := writePlan(t, "bad", []*harness.Server{src}, c.targets, c.table, "")
			out, code := hamalCmd(t, "migrate", "check", "--plan", m.path)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("migrate check: exit %d, output:\n%s\nwant exit %d and %q", code, out, c.code, c.want)
			}
			if c.code == 1 {
				// start refuses the same way and moves nothing.
				p := m.start(t)
				if code := p.wait(t, 60*time.Second); code != 1 || !strings.Contains(p.out.String(), c.want) {
					t.Fatalf("migrate start: exit %d: %s", code, p.out.String())
				}
				if n := dst.MustQuery(t, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='app'")[0][0]; n != "0" {
					t.Fatalf("the target has schema app after a refused start")
				}
			}
		})
	}
}

// TestMigrateEdgeValuesExact splits the edge-value table (FLOAT beyond six
// digits, DOUBLE extremes, DECIMAL(65,30), TIME(3), BIT, YEAR 0000, latin1
// bytes, binary strings) over two targets: every value arrives exactly,
// verify finds no mismatch; then one target's FLOATs are made lossy the
// way a text-protocol copy or mariadb-dump makes them (six significant
// digits), and verify reports exactly those rows as differing, each on its
// target.
func TestMigrateEdgeValuesExact(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src := harness.MariaDB(t, harness.Options{ServerID: 1})
	targets := []*harness.Server{harness.MariaDB(t, harness.Options{ServerID: 11}), harness.MariaDB(t, harness.Options{ServerID: 12})}
	src.MustExec(t, "SET time_zone='+00:00'", "CREATE DATABASE app DEFAULT CHARSET latin1", fmt.Sprintf(workload.EdgeTable, "app.edge"),
		"INSERT INTO app.edge VALUES "+workload.EdgeRows)
	m := writePlan(t, "edge", []*harness.Server{src}, targets, "  - {name: app.edge, shard_key: id, rule: hash}\n",
		"copy: {workers: 2, chunk_rows: 2}\nverify: {chunk_rows: 2, rechecks: 1, recheck_delay: 100ms}\n")
	p := m.start(t)
	st := m.waitStatus(t, p, 120*time.Second, "automatic verify after the copy", func(st reshard.Status) bool {
		return st.Phase == reshard.PhaseCatchup && !st.Verifying && st.Verify != nil
	})
	if st.Verify.Mismatches != 0 || st.Verify.WrongShard != 0 || st.Verify.Tables[0].Rows != 6 {
		t.Fatalf("verify of an exact copy: %+v", st.Verify)
	}
	want := map[string]string{}
	for _, r := range src.MustQuery(t, "SELECT "+workload.EdgeExact+" FROM app.edge ORDER BY id") {
		want[r[0]] = strings.Join(r, "|")
	}
	got := map[string]string{}
	lossy := map[string]int{} // id → target, for the rows whose FLOAT has more than six digits
	for j, tg := range targets {
		for _, r := range tg.MustQuery(t, "SELECT "+workload.EdgeExact+" FROM app.edge ORDER BY id") {
			got[r[0]] = strings.Join(r, "|")
		}
		for _, r := range tg.MustQuery(t, "SELECT id FROM app.edge WHERE f <> CAST(CAST(f AS CHAR) AS FLOAT)") {
			lossy[r[0]] = j
		}
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("row %s:\n got %s\nwant %s", id, got[id], w)
		}
	}
	if len(lossy) < 4 {
		t.Fatalf("the targets hold %d FLOATs beyond six digits, want at least 4: the lossy copy below would prove little", len(lossy))
	}

	// The copy a text-protocol reader makes: FLOAT through its own text.
	for _, tg := range targets {
		tg.MustExec(t, "UPDATE app.edge SET f = CAST(CAST(f AS CHAR) AS DOUBLE)")
	}
	before := time.Now().UTC()
	if out, code := hamalCmd(t, "migrate", "verify", "--no-wait", "--plan", m.path); code != 0 {
		t.Fatalf("migrate verify: exit %d: %s", code, out)
	}
	st = m.waitStatus(t, p, 120*time.Second, "verify of the lossy copy", func(st reshard.Status) bool {
		return !st.Verifying && st.Verify != nil && st.Verify.StartedAt.After(before)
	})
	reported := map[string]int{}
	for _, mm := range st.Verify.Tables[0].Mismatched {
		if mm.Kind != "differs" {
			t.Errorf("unexpected mismatch %+v", mm)
		}
		reported[mm.Key] = mm.Target
	}
	if st.Verify.Mismatches != len(lossy) || fmt.Sprint(reported) != fmt.Sprint(lossy) {
		t.Fatalf("verify reported %v (%d mismatches), want the rows whose FLOAT lost digits %v", reported, st.Verify.Mismatches, lossy)
	}
	t.Logf("verify reports the %d rows the lossy copy changed: %v", len(lossy), lossy)
}
