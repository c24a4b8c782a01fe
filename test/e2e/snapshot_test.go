package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/snapshot"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

// snapshotTables are the tables TestSnapshotKill9 seeds, with their keys.
var snapshotTables = map[string]string{
	"app.orders": "region, id",
	"app.users":  "id",
	"app.types":  "id",
	"app.sbtest": "id",
}

// seedSnapshotSource creates the workload's tables and a sysbench-like one
// on src and fills each with rows rows: every column type, FLOATs with more
// than six significant digits, NULLs, non-BMP text, binary bytes.
func seedSnapshotSource(t *testing.T, src *harness.Server, rows int) {
	t.Helper()
	src.MustExec(t, workload.Schema...)
	src.MustExec(t,
		"CREATE TABLE app.sbtest (id INT PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, KEY (k)) DEFAULT CHARSET=latin1",
		"SET time_zone='+00:00'",
		fmt.Sprintf("INSERT INTO app.orders SELECT seq %% 4, seq, seq %% 500, seq / 100, IF(seq %% 9 = 0, NULL, CONCAT('n', seq)) FROM (SELECT CAST(seq AS SIGNED) AS seq FROM app.seq_1_to_%d) s", rows),
		fmt.Sprintf("INSERT INTO app.users SELECT seq, CONCAT('s', seq, '@x'), CONCAT('ü😀', seq), seq %% 7 FROM (SELECT CAST(seq AS SIGNED) AS seq FROM app.seq_1_to_%d) s", rows),
		fmt.Sprintf(`INSERT INTO app.types SELECT seq, seq %% 256 - 128, seq %% 256, seq %% 65536 - 32768, seq %% 65536,
			seq %% 16777216 - 8388608, seq %% 16777216, seq * 1000 - 100000000, seq * 1000, seq * 100000000001 - 9000000000000000, seq * 10000000000001,
			IF(seq %% 13 = 0, NULL, CAST(seq AS DECIMAL(30,10)) / 7), seq * 1.0000001e0 + 0.1234567, seq / 3e0,
			DATE_ADD('2000-01-01', INTERVAL seq %% 10000 DAY), SEC_TO_TIME((seq %% 6000000) - 3000000 + 0.123456),
			DATE_ADD('2000-01-01 00:00:00.000001', INTERVAL seq SECOND), FROM_UNIXTIME(1000000000 + seq + 0.654321), 1901 + seq %% 255,
			LEFT(MD5(seq), seq %% 11), CONCAT('😀 ', seq), UNHEX(LPAD(HEX(seq), 8, '0')), UNHEX(MD5(seq)), REPEAT(CHAR(seq %% 256), seq %% 100),
			IF(seq %% 11 = 0, NULL, CONCAT('tëxt	', seq, '\n\\')), JSON_OBJECT('k', seq, 'f', seq / 7), ELT(1 + seq %% 3, 'a', 'b', 'c'),
			ELT(1 + seq %% 4, '', 'x', 'x,z', 'x,y,z'), seq %% 1024 FROM (SELECT CAST(seq AS SIGNED) AS seq FROM app.seq_1_to_%d) s`, rows),
		fmt.Sprintf("INSERT INTO app.sbtest SELECT seq, seq %% 1000, REPEAT(CHAR(97 + seq %% 26), 120), REPEAT('p', 60) FROM (SELECT CAST(seq AS SIGNED) AS seq FROM app.seq_1_to_%d) s", rows))
}

// exactChecksum is a checksum of a table over every column's exact value:
// FLOAT and DOUBLE by their value as a DOUBLE (their own text and HEX()
// round them), everything else by its bytes.
func exactChecksum(t *testing.T, s *harness.Server, table, orderBy string) (string, string) {
	t.Helper()
	schema, name, _ := strings.Cut(table, ".")
	cols := s.MustQuery(t, fmt.Sprintf("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='%s' AND TABLE_NAME='%s' ORDER BY ORDINAL_POSITION", schema, name))
	parts := make([]string, len(cols))
	for i, c := range cols {
		v := "`" + c[0] + "`"
		if c[1] == "float" || c[1] == "double" {
			v = "CAST(" + v + " + 0E0 AS CHAR)"
		}
		parts[i] = "IFNULL(HEX(CAST(" + v + " AS BINARY)), 'N')"
	}
	s.MustExec(t, "SET GLOBAL group_concat_max_len = 1073741824")
	r := s.MustQuery(t, fmt.Sprintf("SELECT COUNT(*), MD5(GROUP_CONCAT(MD5(CONCAT_WS('|', %s)) ORDER BY %s SEPARATOR '')) FROM %s",
		strings.Join(parts, ","), orderBy, table))
	return r[0][0], r[0][1]
}

func waitExactEqual(t *testing.T, src, dst *harness.Server, tables map[string]string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var diff []string
		for table, orderBy := range tables {
			sn, ss := exactChecksum(t, src, table, orderBy)
			dn, ds := exactChecksum(t, dst, table, orderBy)
			if sn != dn || ss != ds {
				diff = append(diff, fmt.Sprintf("%s: source %s rows %s, target %s rows %s", table, sn, ss, dn, ds))
			}
		}
		if len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tables differ after %s:\n  %s", timeout, strings.Join(diff, "\n  "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// snapshotWriter changes seeded rows of every table at random (updates
// with new FLOAT digits, primary-key moves, unique values, deletes and
// re-inserts), so rows copied before a kill change after the snapshot
// position.
func snapshotWriter(ctx context.Context, src *harness.Server, rows int, seed uint64, ops *atomic.Int64) error {
	c, err := src.Connect("")
	if err != nil {
		return err
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(seed, 7))
	for n := 0; ctx.Err() == nil; n++ {
		id := 1 + rng.IntN(rows)
		var q string
		switch rng.IntN(8) {
		case 0:
			q = fmt.Sprintf("UPDATE app.sbtest SET k = k + 1, c = LEFT(CONCAT('u%d-', c), 120) WHERE id = %d", n, id)
		case 1:
			q = fmt.Sprintf("DELETE FROM app.sbtest WHERE id = %d", id)
		case 2:
			q = fmt.Sprintf("REPLACE INTO app.sbtest VALUES (%d, %d, 'again', 'p')", id, n)
		case 3:
			q = fmt.Sprintf("UPDATE app.types SET f = %g, d = %g, de = %d.%010d, tm = '-%d:01:02.%06d', bt = %d WHERE id = %d",
				rng.Float32()*1e7, rng.NormFloat64()*1e200, rng.IntN(1e9), rng.IntN(1e9), rng.IntN(800), rng.IntN(1e6), rng.IntN(1024), id)
		case 4: // a primary-key change
			q = fmt.Sprintf("UPDATE IGNORE app.orders SET region = (region + 1) %% 4, amount = amount + 1 WHERE id = %d", id)
		case 5:
			q = fmt.Sprintf("UPDATE app.users SET email = 'w%d-%d@x', visits = visits + 1 WHERE id = %d", seed, n, id)
		case 6:
			q = fmt.Sprintf("DELETE FROM app.users WHERE id = %d", id)
		case 7:
			q = fmt.Sprintf("DELETE FROM app.types WHERE id = %d", id)
		}
		for attempt := 0; ; attempt++ {
			_, err := c.Execute(q)
			if err == nil {
				break
			}
			var me *gomysql.MyError
			if errors.As(err, &me) && (me.Code == 1213 || me.Code == 1205) && attempt < 5 {
				continue // writers meet on a row
			}
			return fmt.Errorf("%s: %w", q, err)
		}
		ops.Add(1)
	}
	return nil
}

// snapshotState reads the channel's snapshot state (hamal must not run).
func (c *channel) snapshotState(t *testing.T) (srcmysql.Position, bool, bool) {
	t.Helper()
	store, err := checkpoint.Open(filepath.Join(c.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pos, done, ok, err := snapshot.Position(store, c.name)
	if err != nil {
		t.Fatal(err)
	}
	return pos, done, ok
}

var dumpStart = regexp.MustCompile(`msg="starting binlog dump".* gtid=(\S+)`)

// TestSnapshotKill9 starts a channel with source.start: snapshot on an
// empty target while writers change the source throughout, SIGKILLs hamal
// twice during the copy and once right after the hand-off, and requires:
// the snapshot position recorded before the first kill never changes; the
// binlog dump after the copy starts exactly there (the hand-off position
// equals the snapshot position); the restart after the hand-off streams
// from the checkpoint without copying again; and the target equals the
// source by an exact checksum of every column. 4 tables of 25k rows (200k
// with HAMAL_LONG=1).
func TestSnapshotKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	rows, chunk := 25_000, 250
	if long() {
		rows, chunk = 200_000, 1000
	}
	var src, dst *harness.Server
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); src = harness.MariaDB(t, harness.Options{ServerID: 1}) }()
	go func() { defer wg.Done(); dst = harness.MariaDB(t, harness.Options{ServerID: 2}) }()
	wg.Wait()
	if src == nil || dst == nil {
		t.FailNow()
	}
	seedSnapshotSource(t, src, rows)
	before, err := src.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	ch := newChannel(t, src, dst, channelOpts{start: "snapshot",
		extra: fmt.Sprintf("  snapshot: {workers: 2, chunk_rows: %d}\n", chunk)})

	ctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	var ops, txns atomic.Int64
	var writerErr atomic.Pointer[error]
	var writers sync.WaitGroup
	run := func(f func() error) {
		writers.Add(1)
		go func() {
			defer writers.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				writerErr.CompareAndSwap(nil, &err)
			}
		}()
	}
	for i := range 2 {
		run(func() error { return snapshotWriter(ctx, src, rows, uint64(i+1), &ops) })
	}
	run(func() error { return workload.Write(ctx, src.Addr, 3, 1<<30, 42, &txns) })
	checkWriters := func() {
		t.Helper()
		if p := writerErr.Load(); p != nil {
			t.Fatalf("writer: %v", *p)
		}
	}

	total := int64(4 * rows)
	killAt := func(p *proc, frac float64) pipeline.Status {
		t.Helper()
		st := ch.waitState(t, 3*time.Minute, func(st pipeline.Status) bool {
			return st.Snapshot != nil && (st.Snapshot.State == "done" || float64(st.Snapshot.RowsCopied) >= frac*float64(total))
		})
		p.kill(t)
		if st.Snapshot.State != "copying" {
			t.Fatalf("the copy was %s before %.0f%% of it was seen (%+v): make the test's chunks smaller", st.Snapshot.State, frac*100, st.Snapshot)
		}
		return st
	}
	p := ch.start(t)
	st := killAt(p, 0.25)
	first, done, ok := ch.snapshotState(t)
	if !ok || done {
		t.Fatalf("after the first kill: state ok %v, done %v; want a copy in progress", ok, done)
	}
	if st.Snapshot.Position != first.String() {
		t.Fatalf("/status showed snapshot position %q, the state holds %q", st.Snapshot.Position, first.String())
	}
	if gtidSeq(t, first.GTID) < gtidSeq(t, before) {
		t.Fatalf("snapshot position %s precedes the source's position %s before the channel started", first, before)
	}
	checkWriters()
	t.Logf("kill 1 at %d of %d rows copied; snapshot position %s", st.Snapshot.RowsCopied, total, first)

	p = ch.start(t)
	st = killAt(p, 0.6)
	if pos, done, _ := ch.snapshotState(t); done || pos != first {
		t.Fatalf("after the second kill: position %s (done %v), want %s unchanged and the copy in progress", pos, done, first)
	}
	t.Logf("kill 2 at %d of %d rows copied", st.Snapshot.RowsCopied, total)

	p = ch.start(t)
	ch.waitState(t, 5*time.Minute, func(st pipeline.Status) bool {
		return st.State == pipeline.StateRunning && st.Snapshot != nil && st.Snapshot.State == "done"
	})
	p.kill(t) // right after the hand-off
	handoff := p.out.String()
	m := dumpStart.FindStringSubmatch(handoff)
	if m == nil {
		t.Fatalf("no binlog dump started after the copy; output:\n%s", lastLines(handoff, 30))
	}
	if m[1] != first.GTID {
		t.Errorf("the stream started at gtid %s, want the snapshot position %s", m[1], first.GTID)
	}
	if !strings.Contains(handoff, "resuming the copy; the stream will still start at the snapshot position") {
		t.Errorf("the third run did not resume the copy; output:\n%s", lastLines(handoff, 30))
	}
	if pos, done, _ := ch.snapshotState(t); !done || pos != first {
		t.Fatalf("after the hand-off: position %s (done %v), want %s and done", pos, done, first)
	}
	cp, ok := ch.checkpointPos(t)
	if !ok {
		t.Fatal("no checkpoint after the hand-off")
	}
	t.Logf("kill 3 right after the hand-off; checkpoint %s", cp)

	p = ch.start(t)
	ch.waitState(t, time.Minute, func(st pipeline.Status) bool { return st.State == pipeline.StateRunning })
	// Let the writers go on against the streaming channel for a while.
	for at := ops.Load() + 500; ops.Load() < at; {
		checkWriters()
		time.Sleep(20 * time.Millisecond)
	}
	stopWriters()
	writers.Wait()
	checkWriters()
	t.Logf("writers done: %d row changes, %d workload transactions", ops.Load(), txns.Load())
	waitExactEqual(t, src, dst, snapshotTables, 5*time.Minute)
	out := p.out.String()
	if strings.Contains(out, "snapshot: position taken") || strings.Contains(out, "resuming the copy") {
		t.Errorf("the run after the hand-off copied again; output:\n%s", lastLines(out, 30))
	}
	final, err := ch.status()
	if err != nil {
		t.Fatal(err)
	}
	if final.Snapshot == nil || final.Snapshot.State != "done" || final.Snapshot.Position != first.String() ||
		final.Snapshot.TablesDone != 4 || final.Snapshot.RowsCopied < total/2 {
		t.Errorf("final snapshot status %+v", final.Snapshot)
	}
	t.Logf("target equals source: 4 tables of %d rows; the copy read %d rows in saved chunks", rows, final.Snapshot.RowsCopied)
}

// TestSnapshotEdgeValuesExact: hamal run with source.start: snapshot copies
// the edge-value table (FLOAT beyond six digits, DOUBLE extremes,
// DECIMAL(65,30), TIME(3), BIT, YEAR 0000, latin1 bytes) exactly into a
// table it creates, and streams a change of it after the hand-off.
func TestSnapshotEdgeValuesExact(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src := harness.MariaDB(t, harness.Options{ServerID: 1})
	dst := harness.MariaDB(t, harness.Options{ServerID: 2})
	src.MustExec(t, "SET time_zone='+00:00'", "CREATE DATABASE app DEFAULT CHARSET latin1", fmt.Sprintf(workload.EdgeTable, "app.edge"),
		"INSERT INTO app.edge VALUES "+workload.EdgeRows)
	ch := newChannel(t, src, dst, channelOpts{start: "snapshot"})
	ch.start(t)
	ch.waitState(t, time.Minute, func(st pipeline.Status) bool {
		return st.State == pipeline.StateRunning && st.Snapshot != nil && st.Snapshot.State == "done"
	})
	src.MustExec(t, "UPDATE app.edge SET f = 0.987654321, b64 = b'101' WHERE id = 2")
	exact := func(s *harness.Server) string {
		return fmt.Sprint(s.MustQuery(t, "SELECT "+workload.EdgeExact+" FROM app.edge ORDER BY id"))
	}
	want := exact(src)
	deadline := time.Now().Add(time.Minute)
	for exact(dst) != want {
		if time.Now().After(deadline) {
			t.Fatalf("edge values differ:\n got %s\nwant %s", exact(dst), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
