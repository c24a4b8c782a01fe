package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

// metric reads one un-labelled-but-channel series from the channel's
// /metrics (the sum over its samples).
func (c *channel) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + c.adminAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", c.name, err)
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		t.Fatalf("metric %s not exported by %s", name, c.name)
	}
	return sum
}

// waitQuiet waits until no server's binlog has grown for a while, and
// fails if they keep growing: a loop would make them grow forever.
func waitQuiet(t *testing.T, servers ...*harness.Server) {
	t.Helper()
	positions := func() string {
		var all []string
		for _, s := range servers {
			p, err := s.GTIDPos()
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p)
		}
		return strings.Join(all, " | ")
	}
	last, stableSince := positions(), time.Now()
	deadline := time.Now().Add(60 * time.Second)
	for time.Since(stableSince) < 4*time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("binlogs still growing after 60s (an echo loop?): %s", last)
		}
		time.Sleep(250 * time.Millisecond)
		if p := positions(); p != last {
			last, stableSince = p, time.Now()
		}
	}
	t.Logf("binlogs quiet at %s", last)
}

var extraTable = map[string]string{"app.extra": "id"}

func mergeTables(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// TestDualMasterNoEcho runs A⇄B on each row of the server-settings matrix
// (make test: no charset option, +08:00, ANSI_QUOTES and
// NO_BACKSLASH_ESCAPES) with both sites writing the mixed workload at
// once on disjoint keys (4k transactions each, 10k with HAMAL_LONG=1), a
// DDL at A in the middle, and a SIGKILL of each channel. Both sides end
// equal, no channel ends in state error, hamal.conflicts stays empty at
// both sites (every row has one writer: a conflict would be false), and
// once quiet neither binlog grows: no change came back to where it was
// written.
func TestDualMasterNoEcho(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	for _, row := range harness.MatrixRows(t, false) {
		t.Run(row.Name, func(t *testing.T) { dualMasterNoEcho(t, row) })
	}
}

func dualMasterNoEcho(t *testing.T, row harness.MatrixRow) {
	a, b := startPairWith(t, row)
	ab := newChannel(t, a, b, channelOpts{name: "a-to-b", srcSite: "a", sinkSite: "b"})
	ba := newChannel(t, b, a, channelOpts{name: "b-to-a", srcSite: "b", sinkSite: "a"})
	pab, pba := ab.startRunning(t), ba.startRunning(t)

	perWorker := 2000 // two writers per site; 5000 with HAMAL_LONG=1
	if long() {
		perWorker = 5000
	}
	var done atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for w := 1; w <= 4; w++ {
		site := a
		if w > 2 {
			site = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- workload.Write(ctx, site.Addr, w, perWorker, 7, &done)
		}()
	}
	waitDone := func(n int64) {
		for done.Load() < n {
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitDone(int64(4 * perWorker / 4))
	// DDL at A while both sites write: created, altered, used, once.
	a.MustExec(t, "CREATE TABLE app.extra (id INT PRIMARY KEY, v INT)",
		"INSERT INTO app.extra VALUES (1, 1), (2, 2)",
		"ALTER TABLE app.extra ADD COLUMN w VARCHAR(10) DEFAULT 'd'",
		"INSERT INTO app.extra VALUES (3, 3, 'x')")
	pab.kill(t)
	t.Logf("SIGKILL a-to-b at %d transactions", done.Load())
	pab = ab.start(t)
	waitDone(int64(4 * perWorker * 2 / 3))
	pba.kill(t)
	t.Logf("SIGKILL b-to-a at %d transactions", done.Load())
	pba = ba.start(t)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	b.MustExec(t, "UPDATE app.extra SET w = 'from-b' WHERE id = 2")

	tables := mergeTables(workload.Tables, extraTable)
	waitTablesEqual(t, a, b, tables, 3*time.Minute)
	waitQuiet(t, a, b)
	assertTablesEqual(t, a, b, tables)
	if got := a.MustQuery(t, "SELECT GROUP_CONCAT(CONCAT(id,':',v,':',w) ORDER BY id) FROM app.extra")[0][0]; got != "1:1:d,2:2:from-b,3:3:x" {
		t.Errorf("app.extra at A = %q", got)
	}
	for site, s := range map[string]*harness.Server{"a": a, "b": b} {
		if n := s.MustQuery(t, "SELECT COUNT(*) FROM hamal.conflicts")[0][0]; n != "0" {
			t.Errorf("site %s recorded %s conflicts for rows only one site writes: %v", site, n,
				s.MustQuery(t, "SELECT table_name, row_key, change_kind, resolution, incoming_origin, LEFT(incoming_image,120), LEFT(existing_image,120) FROM hamal.conflicts ORDER BY id LIMIT 5"))
		}
	}
	for _, ch := range []*channel{ab, ba} {
		if st, err := ch.status(); err != nil || st.State != pipeline.StateRunning {
			t.Errorf("%s: state %v (%v), want running", ch.name, st.State, err)
		}
	}
	for _, ch := range []*channel{ab, ba} {
		if n := ch.metric(t, "hamal_loop_dropped_txns_total"); n == 0 {
			t.Errorf("%s dropped no echo since its restart; the other channel's writes must come back to it and be dropped", ch.name)
		} else {
			t.Logf("%s: %v echoes dropped since its restart", ch.name, n)
		}
	}
}

// TestStarRelay runs A⇄C⇄B: C relays between the leaves. Every write
// reaches every site exactly once: the rows each channel applied are
// counted exactly, with no restarts to cause replays.
func TestStarRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	servers := make([]*harness.Server, 3)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); servers[i] = harness.MariaDB(t, harness.Options{ServerID: i + 1}) }()
	}
	wg.Wait()
	a, c, b := servers[0], servers[1], servers[2]
	for _, s := range servers {
		if s == nil {
			t.FailNow()
		}
		s.MustExec(t, "CREATE DATABASE app", "CREATE TABLE app.probe (id INT PRIMARY KEY, site CHAR(1))")
	}
	ac := newChannel(t, a, c, channelOpts{name: "a-to-c", srcSite: "a", sinkSite: "c"})
	ca := newChannel(t, c, a, channelOpts{name: "c-to-a", srcSite: "c", sinkSite: "a", serverID: 4243})
	bc := newChannel(t, b, c, channelOpts{name: "b-to-c", srcSite: "b", sinkSite: "c"})
	cb := newChannel(t, c, b, channelOpts{name: "c-to-b", srcSite: "c", sinkSite: "b", serverID: 4244})
	for _, ch := range []*channel{ac, ca, bc, cb} {
		ch.startRunning(t)
	}

	// One row per transaction: 300 at A, 300 at B, 100 at C.
	writes := map[*harness.Server][2]int{a: {1, 300}, b: {1001, 300}, c: {2001, 100}}
	names := map[*harness.Server]string{a: "a", b: "b", c: "c"}
	for s, w := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := w[0]; id < w[0]+w[1]; id++ {
				if err := s.Exec(fmt.Sprintf("INSERT INTO app.probe VALUES (%d, '%s')", id, names[s])); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	probe := map[string]string{"app.probe": "id"}
	waitTablesEqual(t, a, c, probe, 2*time.Minute)
	waitTablesEqual(t, b, c, probe, 2*time.Minute)
	waitQuiet(t, a, b, c)
	assertTablesEqual(t, a, b, probe)
	if n := a.MustQuery(t, "SELECT COUNT(*) FROM app.probe")[0][0]; n != "700" {
		t.Fatalf("A holds %s rows, want 700", n)
	}
	// Exactly once: a leaf's channel carries only the leaf's own writes;
	// the centre's carries the other leaf's and its own.
	want := map[*channel]float64{ac: 300, bc: 300, ca: 400, cb: 400}
	for ch, n := range want {
		if got := ch.metric(t, "hamal_applied_rows_total"); got != n {
			t.Errorf("%s applied %v rows, want exactly %v", ch.name, got, n)
		}
	}
}

func (c *channel) post(t *testing.T, path string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+c.adminAddr+path, nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s on %s: %s", path, c.name, resp.Status)
	}
}

// TestConflictPolicies changes the same rows at both sites while both
// channels are paused, so neither change has crossed when the other is
// made, then resumes. One table per policy: A wins (source-wins on A→B,
// target-wins on B→A), B wins (the reverse), and last-writer-wins on a
// version column. Both sites must end equal, with the policy's values, and
// the conflicts recorded on both.
func TestConflictPolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	var wg sync.WaitGroup
	var a, b *harness.Server
	wg.Add(2)
	go func() { defer wg.Done(); a = harness.MariaDB(t, harness.Options{ServerID: 1}) }()
	go func() { defer wg.Done(); b = harness.MariaDB(t, harness.Options{ServerID: 2}) }()
	wg.Wait()
	if a == nil || b == nil {
		t.FailNow()
	}
	tables := map[string]string{}
	for _, s := range []*harness.Server{a, b} {
		s.MustExec(t, "CREATE DATABASE app")
		for _, name := range []string{"awins", "bwins", "lww"} {
			s.MustExec(t, "CREATE TABLE app."+name+" (id INT PRIMARY KEY, v VARCHAR(20) CHARACTER SET utf8mb4, ver BIGINT NOT NULL, bin VARBINARY(4) DEFAULT X'FF00')",
				"INSERT INTO app."+name+" (id, v, ver) VALUES (1,'orig',0),(2,'orig',0),(3,'orig',0)")
			tables["app."+name] = "id"
		}
	}
	for _, s := range []*harness.Server{a, b} {
		s.MustExec(t, "CREATE TABLE app.owned (id INT PRIMARY KEY, owner INT NOT NULL)")
	}
	conflicts := func(awins, bwins string) string {
		return "  unsynced: {app.owned: owner}\n  conflicts:\n    tables:\n" +
			"      app.awins: {policy: " + awins + "}\n" +
			"      app.bwins: {policy: " + bwins + "}\n" +
			"      app.lww: {policy: last-writer-wins, column: ver}\n"
	}
	ab := newChannel(t, a, b, channelOpts{name: "a-to-b", srcSite: "a", sinkSite: "b", sinkExtra: conflicts("source-wins", "target-wins")})
	ba := newChannel(t, b, a, channelOpts{name: "b-to-a", srcSite: "b", sinkSite: "a", sinkExtra: conflicts("target-wins", "source-wins")})
	ab.startRunning(t)
	ba.startRunning(t)
	ab.post(t, "/pause")
	ba.post(t, "/pause")

	for _, name := range []string{"awins", "bwins"} {
		a.MustExec(t, "UPDATE app."+name+" SET v='from-a 甲', ver=1 WHERE id IN (1,2)", "DELETE FROM app."+name+" WHERE id=3")
		b.MustExec(t, "UPDATE app."+name+" SET v='from-b 乙', ver=1 WHERE id IN (2,3)")
	}
	// Last writer wins: row 1 newer at B, row 2 newer at A, row 3 a tie
	// (the greater site name, b, wins).
	a.MustExec(t, "UPDATE app.lww SET v='from-a 甲', ver=10 WHERE id=1", "UPDATE app.lww SET v='from-a 甲', ver=30 WHERE id=2", "UPDATE app.lww SET v='from-a 甲', ver=5 WHERE id=3")
	b.MustExec(t, "UPDATE app.lww SET v='from-b 乙', ver=20 WHERE id=1", "UPDATE app.lww SET v='from-b 乙', ver=25 WHERE id=2", "UPDATE app.lww SET v='from-b 乙', ver=5 WHERE id=3")
	ab.post(t, "/resume")
	ba.post(t, "/resume")

	waitTablesEqual(t, a, b, tables, time.Minute)
	waitQuiet(t, a, b)
	assertTablesEqual(t, a, b, tables)
	want := map[string]string{
		"awins": "1:from-a 甲,2:from-a 甲",            // A's delete of 3 wins over B's update
		"bwins": "1:from-a 甲,2:from-b 乙,3:from-b 乙", // B's update of 3 wins over A's delete
		"lww":   "1:from-b 乙,2:from-a 甲,3:from-b 乙",
	}
	for name, w := range want {
		for site, s := range map[string]*harness.Server{"a": a, "b": b} {
			got := s.MustQuery(t, "SELECT IFNULL(GROUP_CONCAT(CONCAT(id,':',v) ORDER BY id),'') FROM app."+name)[0][0]
			if got != w {
				t.Errorf("app.%s at %s = %q, want %q", name, site, got, w)
			}
		}
	}
	for site, s := range map[string]*harness.Server{"a": a, "b": b} {
		n := s.MustQuery(t, "SELECT COUNT(*) FROM hamal.conflicts")[0][0]
		t.Logf("site %s recorded %s conflicts: %v", site, n, s.MustQuery(t, "SELECT table_name, row_key, change_kind, resolution, incoming_origin, LEFT(incoming_image,80), LEFT(existing_image,80) FROM hamal.conflicts ORDER BY id"))
		if n == "0" {
			t.Errorf("site %s recorded no conflict", site)
		}
	}
	// The images are readable: non-Latin text as text, bytes as base64.
	for site, s := range map[string]*harness.Server{"a": a, "b": b} {
		n := s.MustQuery(t, `SELECT COUNT(*) FROM hamal.conflicts WHERE (incoming_image LIKE '%甲%' OR incoming_image LIKE '%乙%') AND existing_image LIKE '%"bin": {"base64": "/wA="}%'`)[0][0]
		if n == "0" {
			t.Errorf("site %s: no conflict record holds the Chinese text and the bytes FF00 as base64: %v", site,
				s.MustQuery(t, "SELECT incoming_image, existing_image FROM hamal.conflicts LIMIT 2"))
		}
	}
	if n := ab.metric(t, "hamal_conflicts_total") + ba.metric(t, "hamal_conflicts_total"); n == 0 {
		t.Error("hamal_conflicts_total is 0 on both channels")
	}

	// Unsynced owners: the application records owner 7 at B before writing
	// it at A; the entry stays while the write has not crossed and goes in
	// the transaction that applies it. Owner 8's entry has no write.
	ab.post(t, "/pause")
	b.MustExec(t, "INSERT INTO hamal.unsynced (owner, origin) VALUES ('7','a'), ('8','a')")
	a.MustExec(t, "INSERT INTO app.owned VALUES (1, 7)")
	time.Sleep(time.Second)
	if got := b.MustQuery(t, "SELECT GROUP_CONCAT(owner ORDER BY owner) FROM hamal.unsynced")[0][0]; got != "7,8" {
		t.Fatalf("unsynced at B before the write crossed = %q, want 7,8", got)
	}
	ab.post(t, "/resume")
	waitTablesEqual(t, a, b, map[string]string{"app.owned": "id"}, time.Minute)
	if got := b.MustQuery(t, "SELECT GROUP_CONCAT(owner ORDER BY owner) FROM hamal.unsynced")[0][0]; got != "8" {
		t.Errorf("unsynced at B after the write was applied = %q, want 8", got)
	}
}

// TestFailoverReport stops the channel A→B (as if site A failed), writes
// more at A, and requires `hamal failover-report` to list exactly the rows
// written at A after the channel stopped, with their owners and both
// images.
func TestFailoverReport(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	var wg sync.WaitGroup
	var a, b *harness.Server
	wg.Add(2)
	go func() { defer wg.Done(); a = harness.MariaDB(t, harness.Options{ServerID: 1}) }()
	go func() { defer wg.Done(); b = harness.MariaDB(t, harness.Options{ServerID: 2}) }()
	wg.Wait()
	if a == nil || b == nil {
		t.FailNow()
	}
	for _, s := range []*harness.Server{a, b} {
		s.MustExec(t, "CREATE DATABASE app", "CREATE TABLE app.orders (id INT PRIMARY KEY, customer INT NOT NULL, amount DECIMAL(8,2))",
			"CREATE TABLE app.other (k VARCHAR(10) PRIMARY KEY, v BLOB)")
	}
	ab := newChannel(t, a, b, channelOpts{name: "a-to-b", srcSite: "a", sinkSite: "b", sinkExtra: "  unsynced: {app.orders: customer}\n"})
	p := ab.startRunning(t)
	a.MustExec(t, "INSERT INTO app.orders VALUES (1, 10, 1.00), (2, 20, 2.00), (3, 30, 3.00)", "INSERT INTO app.other VALUES ('x', 'abc')")
	waitTablesEqual(t, a, b, map[string]string{"app.orders": "id", "app.other": "k"}, time.Minute)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}

	// Site A keeps taking writes the channel never carries.
	a.MustExec(t, "INSERT INTO app.orders VALUES (4, 40, 4.00)",
		"UPDATE app.orders SET amount = 2.50 WHERE id = 2",
		"DELETE FROM app.orders WHERE id = 3",
		"UPDATE app.orders SET amount = 9.99 WHERE id = 4",
		"INSERT INTO app.other VALUES (_binary 0x79, 0x00ff)",
		"UPDATE app.orders SET amount = 5.00 WHERE id = 1")
	b.MustExec(t, "UPDATE app.orders SET amount = 5.00 WHERE id = 1") // an operator already carried this one over

	out, code := hamalCmd(t, "failover-report", "--config", ab.path, "--json")
	if code != 0 {
		t.Fatalf("failover-report exit %d:\n%s", code, out)
	}
	var rep struct {
		Transactions   int `json:"transactions"`
		AlreadyApplied int `json:"already_applied_rows"`
		Tables         []struct {
			Table string `json:"table"`
			Rows  []struct {
				Key, Owner, Op, State string
				Source                map[string]any
				Target                map[string]any
			} `json:"rows"`
		} `json:"tables"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	var got []string
	for _, tb := range rep.Tables {
		for _, r := range tb.Rows {
			got = append(got, fmt.Sprintf("%s %s owner=%s %s %s", tb.Table, r.Key, r.Owner, r.Op, r.State))
		}
	}
	want := []string{ // in binlog order of each row's first change
		"app.orders id=4 owner=40 update missing",
		"app.orders id=2 owner=20 update differs",
		"app.orders id=3 owner=30 delete still-present",
		"app.other k=y owner= insert missing",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("report rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, tb := range rep.Tables {
		for _, r := range tb.Rows {
			if r.Key == "id=2" && (fmt.Sprint(r.Source["amount"]) != "2.50" || fmt.Sprint(r.Target["amount"]) != "2") {
				t.Errorf("images of id=2: source %v target %v", r.Source, r.Target)
			}
		}
	}
	if rep.AlreadyApplied != 1 {
		t.Errorf("already applied rows = %d, want 1 (row 1)", rep.AlreadyApplied)
	}
	if rep.Transactions != 6 {
		t.Errorf("transactions = %d, want the 6 written at A after the stop", rep.Transactions)
	}
	human, code := hamalCmd(t, "failover-report", "--config", ab.path)
	if code != 0 || !strings.Contains(human, "4 row(s) the target lacks") || !strings.Contains(human, "still-present") {
		t.Errorf("human report (exit %d):\n%s", code, human)
	}
}

// TestOwnershipGuard: A⇄B with sink.ownership on app.owned (owners below
// 100 live at a, the rest at b). A writes for an owner of its own and for
// one of b's: both sites converge, B records the foreign write (kind
// foreign-write) and a-to-b counts it in hamal_foreign_writes_total; the
// home write is not recorded.
func TestOwnershipGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	a, b := startPair(t)
	tables := map[string]string{"app.owned": "id"}
	for _, s := range []*harness.Server{a, b} {
		s.MustExec(t, "CREATE TABLE app.owned (id INT PRIMARY KEY, owner INT NOT NULL, v VARCHAR(20) CHARACTER SET utf8mb4)")
	}
	own := "  ownership:\n    app.owned: {column: owner, home: {sites: [a, b], rule: range, ranges: [{shard: 0, to: 100}, {shard: 1, from: 100}]}}\n"
	ab := newChannel(t, a, b, channelOpts{name: "a-to-b", srcSite: "a", sinkSite: "b", sinkExtra: own})
	ba := newChannel(t, b, a, channelOpts{name: "b-to-a", srcSite: "b", sinkSite: "a", sinkExtra: own})
	ab.startRunning(t)
	ba.startRunning(t)
	a.MustExec(t, "INSERT INTO app.owned VALUES (1, 7, 'home write'), (2, 500, '外来 write')")
	b.MustExec(t, "INSERT INTO app.owned VALUES (3, 501, 'home at b')")
	waitTablesEqual(t, a, b, tables, time.Minute)
	waitQuiet(t, a, b)
	got := b.MustQuery(t, "SELECT kind, table_name, row_key, incoming_origin, existing_origin FROM hamal.conflicts")
	if len(got) != 1 || strings.Join(got[0], ",") != "foreign-write,app.owned,id=2,a,b" {
		t.Errorf("records at b: %v, want the one foreign write of owner 500 from a", got)
	}
	if n := a.MustQuery(t, "SELECT COUNT(*) FROM hamal.conflicts")[0][0]; n != "0" {
		t.Errorf("site a recorded %s rows; b wrote only for its own owners", n)
	}
	if n := ab.metric(t, "hamal_foreign_writes_total"); n != 1 {
		t.Errorf("a-to-b hamal_foreign_writes_total = %v, want 1", n)
	}
}

// metricsText is the channel's /metrics page.
func (c *channel) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + c.adminAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", c.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("metrics of %s: %v", c.name, err)
	}
	return string(b)
}
