package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/reshard"
	"github.com/hamal-replication/hamal/test/harness"
)

// docGrants returns the SQL statements docs/migrate.md lists under
// "<!-- grants: role -->", so the test grants exactly what the docs say.
func docGrants(t *testing.T, doc, role string) []string {
	t.Helper()
	re := regexp.MustCompile("(?s)<!-- grants: " + role + " -->\\s*```sql\\n(.*?)```")
	m := re.FindStringSubmatch(doc)
	if m == nil {
		t.Fatalf("docs/migrate.md has no grants block for %s", role)
	}
	var out []string
	for _, s := range strings.Split(m[1], ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

const runbookSchema = `CREATE DATABASE app`

var runbookTables = []string{
	"CREATE TABLE app.users (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, city VARCHAR(32)) DEFAULT CHARSET=utf8mb4",
	"CREATE TABLE app.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id BIGINT NOT NULL, status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new', note VARCHAR(64), KEY (user_id)) DEFAULT CHARSET=utf8mb4",
	"CREATE TABLE app.cart_items (user_id BIGINT NOT NULL, sku VARCHAR(16) NOT NULL, qty INT NOT NULL, PRIMARY KEY (user_id, sku)) DEFAULT CHARSET=utf8mb4",
}

// runbookRows returns every row of the three tables as key → row text.
func runbookRows(t *testing.T, servers ...*harness.Server) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range servers {
		for _, q := range []string{
			"SELECT CONCAT('users/', id), CONCAT_WS('|', name, IFNULL(city, 'N')) FROM app.users",
			"SELECT CONCAT('orders/', id), CONCAT_WS('|', user_id, status, IFNULL(note, 'N')) FROM app.orders",
			"SELECT CONCAT('cart/', user_id, '/', sku), qty FROM app.cart_items",
		} {
			for _, r := range s.MustQuery(t, q) {
				if prev, dup := out[r[0]]; dup {
					t.Errorf("%s is on two servers (%q, %q)", r[0], prev, r[1])
				}
				out[r[0]] = r[1]
			}
		}
	}
	return out
}

// appWriter writes as the application would, through the application's
// account: new users and orders (AUTO_INCREMENT ids), order status
// changes, cart updates, with Chinese text.
type appWriter struct {
	stop, done chan struct{}
	ops        atomic.Int64
	mu         sync.Mutex
	err        error
}

// owns says which user_id values (the shard key of orders and cart_items)
// the server holds: an application on sharded servers writes a user's rows
// on that user's shard.
func startAppWriter(t *testing.T, s *harness.Server, seed int64, owns func(uid int) bool) *appWriter {
	t.Helper()
	c, err := client.Connect(s.Addr, "app", "change-me", "app")
	if err != nil {
		t.Fatal(err)
	}
	w := &appWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer c.Close()
		rnd := rand.New(rand.NewSource(seed))
		statuses := []string{"new", "paid", "shipped", "cancelled"}
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			uid := rnd.Intn(2000) + 1
			for !owns(uid) {
				uid = rnd.Intn(2000) + 1
			}
			var q string
			switch rnd.Intn(4) {
			case 0:
				q = fmt.Sprintf("INSERT INTO users (name, city) VALUES ('用户-%d', '北京')", rnd.Intn(1e6))
			case 1:
				q = fmt.Sprintf("INSERT INTO orders (user_id, status, note) VALUES (%d, 'new', '订单 %d')", uid, rnd.Intn(1e6))
			case 2:
				q = fmt.Sprintf("UPDATE orders SET status = '%s', note = '改了' WHERE id = %d", statuses[rnd.Intn(4)], rnd.Intn(3000)+1)
			case 3:
				q = fmt.Sprintf("INSERT INTO cart_items (user_id, sku, qty) VALUES (%d, 'sku-%d', 1) ON DUPLICATE KEY UPDATE qty = qty + 1", uid, rnd.Intn(5))
			}
			if _, err := c.Execute(q); err != nil {
				w.mu.Lock()
				w.err = fmt.Errorf("%s: %w", q, err)
				w.mu.Unlock()
				return
			}
			w.ops.Add(1)
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *appWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *appWriter) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Fatalf("application writer: %v", w.err)
	}
}

// TestMigrateRunbook follows docs/migrate.md's runbook on servers with
// their own defaults, with exactly the documented grants: check,
// start, verify, cut-over under the application's account, writes on the
// new shards (AUTO_INCREMENT staggered), reverse replication with
// hamal.conflicts empty, then a rollback (cancel after the cut-over)
// after which the old shard holds every write made on the new shards.
// It runs on the server-settings matrix's rows (harness.MatrixRows: by
// default the row furthest from the harness's own setup: no charset
// option, so latin1; +08:00; ANSI_QUOTES and NO_BACKSLASH_ESCAPES).
func TestMigrateRunbook(t *testing.T) {
	for _, row := range harness.MatrixRows(t, false) {
		t.Run(row.Name, func(t *testing.T) { runbook(t, row, "cancel") })
	}
}

// TestMigrateRunbookComplete is the same runbook ending with complete.
func TestMigrateRunbookComplete(t *testing.T) {
	for _, row := range harness.MatrixRows(t, false) {
		t.Run(row.Name, func(t *testing.T) { runbook(t, row, "complete") })
	}
}

func runbook(t *testing.T, row harness.MatrixRow, end string) {
	docBytes, err := os.ReadFile(filepath.Join("..", "..", "docs", "migrate.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(docBytes)
	src := harness.MariaDB(t, harness.Options{ServerID: 61, Settings: row.Source})
	targets := []*harness.Server{
		harness.MariaDB(t, harness.Options{ServerID: 62, Settings: row.Target}),
		harness.MariaDB(t, harness.Options{ServerID: 63, Settings: row.Target}),
	}
	if cs := src.MustQuery(t, "SELECT @@character_set_server")[0][0]; row.Source.NoCharset && cs != "latin1" {
		t.Fatalf("source character_set_server %s; want the server default latin1", cs)
	}
	src.MustExec(t, append([]string{runbookSchema}, runbookTables...)...)
	src.MustExec(t,
		"INSERT INTO app.users (name, city) SELECT CONCAT('用户', seq), IF(seq % 3 = 0, NULL, '上海') FROM app.seq_1_to_2000",
		"INSERT INTO app.orders (user_id, status, note) SELECT seq % 2000 + 1, ELT(seq % 4 + 1, 'new', 'paid', 'shipped', 'cancelled'), CONCAT('备注', seq) FROM app.seq_1_to_3000",
		"INSERT INTO app.cart_items SELECT seq % 2000 + 1, CONCAT('sku-', seq % 5), seq % 7 + 1 FROM app.seq_1_to_4000 ON DUPLICATE KEY UPDATE qty = qty + 1")
	for _, s := range append([]*harness.Server{src}, targets...) {
		role := "targets"
		if s == src {
			role = "sources"
		}
		s.MustExec(t, docGrants(t, doc, role)...)
		if role == "targets" { // the plan sets auto_increment.stagger
			s.MustExec(t, docGrants(t, doc, "targets-stagger")...)
		}
		s.MustExec(t, docGrants(t, doc, "app")...)
	}

	// The plan as docs/migrate.md and configs/migrate-example.yaml write it.
	dir := t.TempDir()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	bypass := "refuse"
	plan := func(extra string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "name: runbook\nstate_dir: %s\nadmin:\n  listen: 127.0.0.1:%d\n", filepath.Join(dir, "state"), port)
		fmt.Fprintf(&b, "sources:\n  - {addr: %s, user: hamal_migrate, password: change-me, server_id: 4301}\ntargets:\n", src.Addr)
		for j, tg := range targets {
			fmt.Fprintf(&b, "  - {addr: %s, user: hamal_migrate, password: change-me, server_id: %d}\n", tg.Addr, 4401+j)
		}
		b.WriteString(`tables:
  - {name: app.users, shard_key: id, rule: hash}
  - {name: app.orders, shard_key: user_id, rule: hash}
  - {name: app.cart_items, shard_key: user_id, rule: hash}
copy: {max_rows_per_second: 0}
verify: {recheck_delay: 500ms}
cutover:
  timeout: 60s
  bypass_allow: [root]
  read_only_bypass: ` + bypass + `
sites: {source: old, target: new}
`)
		b.WriteString(extra)
		return b.String()
	}
	path := filepath.Join(dir, "p.yaml")
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := &migration{path: path, admin: fmt.Sprintf("127.0.0.1:%d", port)}
	run := func(args ...string) (string, int) {
		t.Helper()
		line := "hamal " + strings.Join(args, " ")
		line = strings.Replace(line, " --plan "+path, "", 1)
		if !runbookHas(doc, line) {
			t.Fatalf("docs/migrate.md's runbook does not list %q", line)
		}
		return hamalCmd(t, args...)
	}

	// 1. check: without auto_increment.stagger the AUTO_INCREMENT ids of
	// users and orders would collide across the two targets.
	write(plan(""))
	out, code := run("migrate", "check", "--plan", path)
	if code == 0 || !strings.Contains(out, "AUTO_INCREMENT column(s) app.orders.id, app.users.id") || !strings.Contains(out, "auto_increment: {stagger: true}") {
		t.Fatalf("check without stagger: exit %d:\n%s", code, out)
	}
	write(plan("auto_increment: {stagger: true}\n"))
	out, code = run("migrate", "check", "--plan", path)
	if code != 0 {
		t.Fatalf("migrate check with the documented grants: exit %d:\n%s", code, out)
	}
	for _, want := range []string{"reverse channel migrate-runbook-rev1", "catch-up channel migrate-runbook-fwd0", "no account but the migration's own can write through read_only"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	// 2. start, under a live application writer.
	w := startAppWriter(t, src, 1, func(int) bool { return true })
	p := spawnHamal(t, "hamal migrate", "migrate", "start", "--plan", path)
	m.waitStatus(t, p, 120*time.Second, "catch-up with verify", func(st reshard.Status) bool {
		return st.Phase == reshard.PhaseCatchup && st.Verify != nil && !st.Verifying
	})
	out, _ = run("migrate", "status", "--plan", path)
	if !strings.Contains(out, "phase catchup") || !strings.Contains(out, "rollback ready: yes") {
		t.Errorf("status in catch-up:\n%s", out)
	}
	w.check(t)
	w.halt()
	t.Logf("application wrote %d changes during copy and catch-up", w.ops.Load())

	// 3. verify again, waiting for it.
	if out, code := run("migrate", "verify", "--plan", path); code != 0 || !strings.Contains(out, "verify: 0 mismatching row(s), 0 on the wrong shard") {
		t.Fatalf("migrate verify: exit %d:\n%s", code, out)
	}

	// 4. cut over. An account that can write through read_only appeared
	// since the check: the cut-over (read_only_bypass: refuse, the
	// default) refuses, naming it, and leaves the source writable.
	var ops *client.Conn
	if end == "cancel" {
		src.MustExec(t, "CREATE USER 'ops'@'%' IDENTIFIED BY 'x'", "GRANT READ_ONLY ADMIN ON *.* TO 'ops'@'%'")
		out, code := run("migrate", "cutover", "--plan", path)
		if code == 0 || !strings.Contains(out, "cut-over refused") || !strings.Contains(out, "'ops'@'%' (READ_ONLY ADMIN)") ||
			!strings.Contains(out, "REVOKE READ_ONLY ADMIN ON *.* FROM 'ops'@'%';") {
			t.Fatalf("cutover with an account that writes through read_only: exit %d:\n%s", code, out)
		}
		if ro := src.MustQuery(t, "SELECT @@read_only")[0][0]; ro != "0" {
			t.Fatalf("refused cut-over left the source read_only=%s", ro)
		}
		// The plan says fence instead (with the documented grants for it);
		// the process restarts with it (kill -9: it resumes).
		src.MustExec(t, docGrants(t, doc, "sources-fence")...)
		bypass = "fence"
		write(plan("auto_increment: {stagger: true}\n"))
		p.kill(t)
		p = spawnHamal(t, "hamal migrate", "migrate", "start", "--plan", path)
		m.waitStatus(t, p, 60*time.Second, "catch-up again after the restart", func(st reshard.Status) bool {
			return st.Phase == reshard.PhaseCatchup && len(st.Channels) == 1 && st.Channels[0].State == "running"
		})
		if ops, err = client.Connect(src.Addr, "ops", "x", ""); err != nil {
			t.Fatal(err)
		}
		defer ops.Close()
	}
	if out, code := run("migrate", "cutover", "--plan", path); code != 0 {
		t.Fatalf("migrate cutover: exit %d:\n%s", code, out)
	}
	if ops != nil {
		// Fenced too: its session ended, its account locked.
		if _, err := ops.Execute("SELECT 1"); err == nil {
			t.Fatal("the session of an account that writes through read_only survived the fence")
		}
		if c, err := client.Connect(src.Addr, "ops", "x", ""); err == nil || !strings.Contains(err.Error(), "locked") {
			if c != nil {
				c.Close()
			}
			t.Fatalf("log-in of the fenced account during the cut-over: %v, want account locked", err)
		}
	}
	appSrc, err := client.Connect(src.Addr, "app", "change-me", "app")
	if err != nil {
		t.Fatal(err)
	}
	defer appSrc.Close()
	if _, err := appSrc.Execute("INSERT INTO users (name) VALUES ('through the fence')"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("the application's account wrote on the fenced old shard: %v", err)
	}

	// 5. The application writes on the new shards.
	before := runbookRows(t, src)
	maxID := map[string]string{}
	for _, table := range []string{"app.users", "app.orders"} {
		maxID[table] = src.MustQuery(t, "SELECT MAX(id) FROM "+table)[0][0]
	}
	var ws []*appWriter
	for j, tg := range targets {
		ws = append(ws, startAppWriter(t, tg, int64(10+j), func(uid int) bool { return crcShard(2)(strconv.Itoa(uid)) == j }))
	}
	if err := harness.WaitFor(context.Background(), 30*time.Second, func() (bool, error) {
		return ws[0].ops.Load() >= 300 && ws[1].ops.Load() >= 300, nil
	}); err != nil {
		t.Fatalf("writers on the targets made %d and %d changes: %v", ws[0].ops.Load(), ws[1].ops.Load(), err)
	}
	for _, w := range ws {
		w.halt()
		w.check(t)
	}
	// AUTO_INCREMENT staggered: the targets' new ids never meet.
	for _, table := range []string{"app.users", "app.orders"} {
		for j, tg := range targets {
			q := fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE id > %s AND id %% 2 <> %d", table, maxID[table], (j+1)%2)
			if n := tg.MustQuery(t, q)[0][0]; n != "0" {
				t.Errorf("targets[%d] %s: %s new ids outside its AUTO_INCREMENT offset", j, table, n)
			}
		}
	}
	after := runbookRows(t, targets...)
	newWrites := 0
	for k, v := range after {
		if before[k] != v {
			newWrites++
		}
	}
	t.Logf("%d rows written or changed on the new shards", newWrites)

	// Reverse replication brings them to the old shard, conflict-free.
	st := m.waitStatus(t, p, 60*time.Second, "old shard holds the targets' writes", func(st reshard.Status) bool {
		if st.Reverse.State == reshard.ReverseFailing {
			t.Fatalf("reverse replication failing: %v", st.Reverse.Problems)
		}
		if st.Reverse.State != reshard.ReverseRunning {
			return false
		}
		got := runbookRows(t, src)
		return len(got) == len(after) && equalRows(got, after)
	})
	if !st.Rollback.Ready {
		t.Fatalf("rollback not ready with reverse replication running: %+v", st.Rollback)
	}
	out, _ = run("migrate", "status", "--plan", path)
	if !strings.Contains(out, "reverse replication: running") || !strings.Contains(out, "rollback ready: yes") || strings.Contains(out, "ERROR") ||
		!strings.Contains(out, "STALE: from before the cut-over") {
		t.Errorf("status after the cut-over:\n%s", out)
	}
	if n := src.MustQuery(t, "SELECT COUNT(*) FROM hamal.conflicts")[0][0]; n != "0" {
		rows := src.MustQuery(t, "SELECT * FROM hamal.conflicts LIMIT 3")
		t.Fatalf("hamal.conflicts on the old shard holds %s rows for rows only the new shards wrote: %v", n, rows)
	}

	switch end {
	case "cancel":
		// 6. Roll back.
		if out, code := run("migrate", "cancel", "--plan", path); code != 0 {
			t.Fatalf("migrate cancel (rollback): exit %d:\n%s", code, out)
		}
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("hamal migrate exited %d after cancel", code)
		}
		if got := runbookRows(t, src); !equalRows(got, after) {
			t.Fatalf("after the rollback the old shard does not hold every write of the new shards (%d rows, targets %d)", len(got), len(after))
		}
		if ro := src.MustQuery(t, "SELECT @@read_only")[0][0]; ro != "0" {
			t.Fatalf("old shard read_only=%s after the rollback", ro)
		}
		if _, err := appSrc.Execute("INSERT INTO users (name) VALUES ('back on the old shard')"); err != nil {
			t.Fatalf("the application cannot write on the old shard after the rollback: %v", err)
		}
		c, err := client.Connect(src.Addr, "ops", "x", "")
		if err != nil {
			t.Fatalf("the account the cut-over locked is still locked after the rollback: %v", err)
		}
		c.Close()
		for j, tg := range targets {
			if ro := tg.MustQuery(t, "SELECT @@read_only")[0][0]; ro != "1" {
				t.Errorf("targets[%d] read_only=%s after the rollback; want 1", j, ro)
			}
		}
	case "complete":
		// A reverse channel that cannot apply: a column the new shards
		// write is gone from the old shard. status says ERROR and rollback
		// ready: no at once (never a lag of 0.0s), the metric and the
		// JSON say so; once the column is back, resume recovers.
		src.MustExec(t, "ALTER TABLE app.users DROP COLUMN city")
		w := startAppWriter(t, targets[0], 99, func(uid int) bool { return crcShard(2)(strconv.Itoa(uid)) == 0 })
		st := m.waitStatus(t, p, 60*time.Second, "reverse replication failing", func(st reshard.Status) bool {
			return st.Reverse.State == reshard.ReverseFailing
		})
		w.halt()
		w.check(t)
		if st.Rollback.Ready || !strings.Contains(st.Rollback.Why, "migrate-runbook-rev0") {
			t.Errorf("rollback with a failing reverse channel: %+v", st.Rollback)
		}
		out, _ := run("migrate", "status", "--plan", path)
		if !strings.Contains(out, "reverse replication: ERROR") || !strings.Contains(out, "rollback ready: no") ||
			!strings.Contains(out, "sources[0] "+src.Addr) || regexp.MustCompile(`rev0 +reverse +\S+ +lag 0\.0s`).MatchString(out) {
			t.Errorf("status with a failing reverse channel:\n%s", out)
		}
		metrics := httpGet(t, "http://"+m.admin+"/metrics")
		if !strings.Contains(metrics, `hamal_migrate_rollback_ready{migration="runbook"} 0`) {
			t.Errorf("metrics with a failing reverse channel lack rollback_ready 0")
		}
		src.MustExec(t, "ALTER TABLE app.users ADD COLUMN city VARCHAR(32) NULL")
		if out, code := run("migrate", "resume", "--plan", path); code != 0 {
			t.Fatalf("migrate resume: exit %d:\n%s", code, out)
		}
		ids := func(servers ...*harness.Server) string {
			var all []string
			for _, s := range servers {
				for _, r := range s.MustQuery(t, "SELECT id FROM app.users") {
					all = append(all, r[0])
				}
			}
			sort.Strings(all)
			return strings.Join(all, ",")
		}
		m.waitStatus(t, p, 60*time.Second, "reverse replication running again, the old shard holding every user", func(st reshard.Status) bool {
			return st.Reverse.State == reshard.ReverseRunning && st.Rollback.Ready && ids(src) == ids(targets...)
		})
		if out, code := run("migrate", "complete", "--plan", path); code != 0 {
			t.Fatalf("migrate complete: exit %d:\n%s", code, out)
		}
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("hamal migrate exited %d after complete", code)
		}
		if ro := src.MustQuery(t, "SELECT @@read_only")[0][0]; ro != "1" {
			t.Fatalf("old shard read_only=%s after complete; want 1 (retired)", ro)
		}
	}
	out, _ = run("migrate", "status", "--plan", path)
	if !strings.Contains(out, "phase "+map[string]string{"cancel": "cancelled", "complete": "complete"}[end]) {
		t.Errorf("status after %s:\n%s", end, out)
	}
}

func equalRows(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// runbookHas reports whether the runbook's command block lists line (a
// command without its --plan argument, flags in any spacing).
func runbookHas(doc, line string) bool {
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, l := range strings.Split(doc, "\n") {
		if norm(strings.Replace(l, "--plan p.yaml", "", 1)) == norm(line) {
			return true
		}
	}
	return false
}

// TestMigrateCheckGrants: with the grants docs/migrate.md used to list
// (enough for the copy and the catch-up, not for reverse replication or
// replicated DDL), migrate check fails, once per missing grant, each
// naming the GRANT that fixes it; with the documented grants it passes.
func TestMigrateCheckGrants(t *testing.T) {
	docBytes, err := os.ReadFile(filepath.Join("..", "..", "docs", "migrate.md"))
	if err != nil {
		t.Fatal(err)
	}
	src := harness.MariaDB(t, harness.Options{ServerID: 64, Settings: harness.Settings{NoCharset: true}})
	tg := harness.MariaDB(t, harness.Options{ServerID: 65, Settings: harness.Settings{NoCharset: true}})
	src.MustExec(t, append([]string{runbookSchema}, runbookTables[2])...)
	src.MustExec(t, "CREATE USER 'hamal_migrate'@'%' IDENTIFIED BY 'change-me'",
		"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, READ_ONLY ADMIN ON *.* TO 'hamal_migrate'@'%'")
	tg.MustExec(t, "CREATE USER 'hamal_migrate'@'%' IDENTIFIED BY 'change-me'",
		"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, READ_ONLY ADMIN ON *.* TO 'hamal_migrate'@'%'",
		"GRANT CREATE, SELECT, INSERT, UPDATE, DELETE ON app.* TO 'hamal_migrate'@'%'")
	dir := t.TempDir()
	plan := fmt.Sprintf(`name: grants
state_dir: %s
sources:
  - {addr: %s, user: hamal_migrate, password: change-me, server_id: 4301}
targets:
  - {addr: %s, user: hamal_migrate, password: change-me}
tables:
  - {name: app.cart_items, shard_key: user_id, rule: hash}
cutover: {bypass_allow: [root]}
`, filepath.Join(dir, "state"), src.Addr, tg.Addr)
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := hamalCmd(t, "migrate", "check", "--plan", path)
	if code != 1 {
		t.Fatalf("check with the old grants: exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"fix: GRANT DROP, ALTER, INDEX ON `app`.* TO `hamal_migrate`@`%`",               // targets: replicated DDL
		"fix: GRANT INSERT, UPDATE, DELETE ON `app`.* TO `hamal_migrate`@`%`",           // sources: reverse replication's rows
		"fix: GRANT CREATE, DROP, ALTER, INDEX ON `app`.* TO `hamal_migrate`@`%`",       // sources: reverse replication's DDL
		"fix: GRANT INSERT, UPDATE, DELETE, CREATE ON `hamal`.* TO `hamal_migrate`@`%`", // sources: markers and conflicts
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "FAIL "); n != 4 {
		t.Errorf("check reports %d failures, want 4 (one per missing grant):\n%s", n, out)
	}

	// The documented grants on top: check passes.
	doc := string(docBytes)
	src.MustExec(t, docGrants(t, doc, "sources")[1:]...) // the user exists
	tg.MustExec(t, docGrants(t, doc, "targets")[1:]...)
	if out, code := hamalCmd(t, "migrate", "check", "--plan", path); code != 0 {
		t.Fatalf("check with the documented grants: exit %d:\n%s", code, out)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
