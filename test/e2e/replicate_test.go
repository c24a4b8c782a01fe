package e2e

import (
	"context"
	"math/rand/v2"
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

// startPair starts a source and a target MariaDB with the workload schema
// on both.
func startPair(t *testing.T) (src, dst *harness.Server) {
	t.Helper()
	return startPairWith(t, harness.MatrixRow{Name: "utf8mb4-utc"})
}

// startPairWith is startPair on the settings of a matrix row.
func startPairWith(t *testing.T, row harness.MatrixRow) (src, dst *harness.Server) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		src = harness.MariaDB(t, harness.Options{ServerID: 1, Settings: row.Source})
	}()
	go func() {
		defer wg.Done()
		dst = harness.MariaDB(t, harness.Options{ServerID: 2, Settings: row.Target})
	}()
	wg.Wait()
	if src == nil || dst == nil {
		t.FailNow()
	}
	src.MustExec(t, workload.Schema...)
	dst.MustExec(t, workload.Schema...)
	return src, dst
}

// TestMixedWorkloadSurvivesKill9 writes 8k multi-statement transactions
// (20k with HAMAL_LONG=1) over three tables (composite PK, unique secondary key, every column type)
// with PK changes and unique-value moves, SIGKILLs hamal at random points
// and restarts it, and then requires every table on the target to equal
// the source.
func TestMixedWorkloadSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	for _, row := range harness.MatrixRows(t, false) {
		t.Run(row.Name, func(t *testing.T) { mixedWorkloadSurvivesKill9(t, row) })
	}
}

// matrixDDL is DDL of every kind (CREATE, ALTER, RENAME, DROP, TRUNCATE)
// written as a client of a server with settings st writes it: with
// ANSI_QUOTES, names double-quoted; with NO_BACKSLASH_ESCAPES, a literal
// backslash written once. The tables left are app.DdlKept (a mixed-case
// name on the source) and app.ddl_moved.
func matrixDDL(st harness.Settings) []string {
	q := func(s string) string { return "`" + s + "`" }
	if st.ANSIQuotes() {
		q = func(s string) string { return `"` + s + `"` }
	}
	bs := `\\` // one backslash, escaped
	if st.NoBackslashEscapes() {
		bs = `\`
	}
	return []string{
		"CREATE TABLE " + q("app") + "." + q("DdlKept") + " (id INT PRIMARY KEY, v VARCHAR(20) DEFAULT 'a" + bs + "b')",
		"INSERT INTO app.DdlKept (id) VALUES (1), (2)",
		"ALTER TABLE " + q("app") + "." + q("DdlKept") + " ADD " + q("w") + " VARCHAR(10) DEFAULT 'c" + bs + "' COMMENT 'x" + bs + "'",
		"INSERT INTO app.DdlKept (id, w) VALUES (3, 'z')",
		"CREATE TABLE " + q("app") + "." + q("ddl_gone") + " (id INT PRIMARY KEY)",
		"INSERT INTO app.ddl_gone VALUES (1)",
		"DROP TABLE " + q("app") + "." + q("ddl_gone"),
		"CREATE TABLE " + q("app") + "." + q("ddl_trunc") + " (id INT PRIMARY KEY)",
		"INSERT INTO app.ddl_trunc VALUES (1), (2)",
		"TRUNCATE TABLE " + q("app") + "." + q("ddl_trunc"),
		"INSERT INTO app.ddl_trunc VALUES (3)",
		"RENAME TABLE " + q("app") + "." + q("ddl_trunc") + " TO " + q("app") + "." + q("ddl_moved"),
	}
}

var matrixDDLTables = map[string]string{"app.DdlKept": "id", "app.ddl_moved": "id"}

// assertSameTables checks both servers hold the same tables in app.
func assertSameTables(t *testing.T, src, dst *harness.Server) {
	t.Helper()
	list := func(s *harness.Server) string {
		return s.MustQuery(t, "SELECT IFNULL(GROUP_CONCAT(LOWER(TABLE_NAME) ORDER BY LOWER(TABLE_NAME)),'') FROM information_schema.TABLES WHERE TABLE_SCHEMA='app'")[0][0]
	}
	if a, b := list(src), list(dst); a != b {
		t.Errorf("tables in app differ: source %s, target %s", a, b)
	}
}

func mixedWorkloadSurvivesKill9(t *testing.T, row harness.MatrixRow) {
	src, dst := startPairWith(t, row)
	ch := newChannel(t, src, dst, channelOpts{workers: 8})
	p := ch.startRunning(t)

	const workers = 4
	txnsPerWorker := 2000
	if long() {
		txnsPerWorker = 5000
	}
	var done atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	var finished atomic.Int32
	for w := 1; w <= workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			errc <- workload.Write(ctx, src.Addr, w, txnsPerWorker, 42, &done)
		}()
	}

	// SIGKILL hamal at three random points of the workload and restart it;
	// the DDL goes in after the first kill, while the workload writes.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	total := int64(workers * txnsPerWorker)
	kills := 0
	for i, frac := range []float64{0.15, 0.45, 0.75} {
		at := int64((frac + rng.Float64()*0.1) * float64(total))
		for done.Load() < at && finished.Load() < workers {
			time.Sleep(20 * time.Millisecond)
		}
		// Sometimes kill right after a restart, before the first checkpoint.
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		p.kill(t)
		kills++
		t.Logf("kill %d: SIGKILL at %d/%d transactions", i+1, done.Load(), total)
		if i == 0 {
			src.MustExec(t, matrixDDL(row.Source)...)
		}
		p = ch.start(t)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	t.Logf("workload done: %d transactions, %d kills", done.Load(), kills)
	tables := mergeTables(workload.Tables, matrixDDLTables)
	waitTablesEqual(t, src, dst, tables, 3*time.Minute)
	assertSameTables(t, src, dst)
	st, err := ch.status()
	if err != nil {
		t.Fatal(err)
	}
	if st.State != pipeline.StateRunning || st.InFlight != 0 || st.LagSeconds > 5 {
		t.Errorf("final status %+v, want running with nothing in flight", st)
	}
	t.Logf("final status: state=%s applied=%d txns/%d rows since last start, checkpoint=%s", st.State, st.AppliedTxns, st.AppliedRows, st.CheckpointPosition)

	// A clean stop (SIGTERM) exits 0 and persists the final position.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}
	pos, ok := ch.checkpointPos(t)
	gtid, _ := src.GTIDPos()
	if !ok || !strings.Contains(pos, gtid) {
		t.Errorf("checkpoint after SIGTERM = %q, want it to hold source gtid %q", pos, gtid)
	}
}

// TestMatrixRefusedRows: a matrix row Hamal cannot replicate from
// (binlog_row_metadata=MINIMAL: the binlog carries no column names) is
// refused by hamal check, naming the setting and the fix.
func TestMatrixRefusedRows(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	for _, row := range harness.MatrixRows(t, true) {
		t.Run(row.Name, func(t *testing.T) {
			src, dst := startPairWith(t, row)
			ch := newChannel(t, src, dst, channelOpts{})
			out, code := hamalCmd(t, "check", "--config", ch.path)
			if code != 1 || !strings.Contains(out, "binlog_row_metadata is MINIMAL") || !strings.Contains(out, "SET GLOBAL binlog_row_metadata=FULL") {
				t.Errorf("hamal check on row %s: exit %d, output:\n%s\nwant exit 1 naming binlog_row_metadata and the fix", row.Name, code, out)
			}
		})
	}
}

// TestUniqueReplacementCounted: on a one-way channel, a source row whose
// unique value a row only the target has holds replaces that row (REPLACE
// semantics, the tables end equal) and is counted in
// hamal_unique_replacements_total for its table; an update of the same row
// counts nothing more.
func TestUniqueReplacementCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src, dst := startPair(t)
	for _, s := range []*harness.Server{src, dst} {
		s.MustExec(t, "CREATE TABLE app.ur (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL, v INT, UNIQUE KEY email (email))")
	}
	dst.MustExec(t, "INSERT INTO app.ur VALUES (100, 'taken@example.com', 0)")
	c := newChannel(t, src, dst, channelOpts{name: "ur"})
	p := c.startRunning(t)
	src.MustExec(t, "INSERT INTO app.ur VALUES (1, 'taken@example.com', 1), (2, 'free@example.com', 2)")
	src.MustExec(t, "UPDATE app.ur SET v = 3 WHERE id = 1")
	waitTablesEqual(t, src, dst, map[string]string{"app.ur": "id"}, time.Minute)
	if n := c.metric(t, "hamal_unique_replacements_total"); n != 1 {
		t.Errorf("hamal_unique_replacements_total = %v, want 1", n)
	}
	if text := c.metricsText(t); !strings.Contains(text, `hamal_unique_replacements_total{channel="ur",table="app.ur"} 1`) {
		t.Errorf("no series of app.ur in:\n%s", text)
	}
	if out := p.out.String(); !strings.Contains(out, "unique replacements") || !strings.Contains(out, "id=100") {
		t.Errorf("hamal did not log the replacement of row id=100:\n%s", lastLines(out, 30))
	}
}
