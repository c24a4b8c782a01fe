package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/checkpoint"
	sinkmysql "github.com/hamal-replication/hamal/sink/mysql"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

func pair(t *testing.T, srcID, dstID int) (src, dst *harness.Server) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); src = harness.MariaDB(t, harness.Options{ServerID: srcID}) }()
	go func() { defer wg.Done(); dst = harness.MariaDB(t, harness.Options{ServerID: dstID}) }()
	wg.Wait()
	if src == nil || dst == nil {
		t.FailNow()
	}
	return src, dst
}

func config(t *testing.T, src, dst *harness.Server, store *checkpoint.Store) Config {
	return Config{
		Channel: "snap",
		Source:  srcmysql.Config{Addr: src.Addr, User: "root", ServerID: 9100, Tables: []string{"app.*"}},
		Target: func(ctx context.Context) (*client.Conn, error) {
			return client.ConnectWithContext(ctx, dst.Addr, "root", "", "", 10*time.Second)
		},
		CreateTables: true, Workers: 3, ChunkRows: 200, Store: store,
	}
}

func openStore(t *testing.T, dir string) *checkpoint.Store {
	t.Helper()
	store, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func openSink(t *testing.T, dst *harness.Server) *sinkmysql.Sink {
	t.Helper()
	s, err := sinkmysql.Open(context.Background(), sinkmysql.Config{Addr: dst.Addr, User: "root", Channel: "snap", Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checksum(t *testing.T, s *harness.Server, table string) string {
	t.Helper()
	sum, n, err := s.TableChecksum(table, "id")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows %s", n, sum)
}

// TestSeedCopiesResumesAndKeepsItsPosition: a snapshot cancelled in the
// middle of its copy resumes from its saved chunks in a new Snapshot (as
// after a restart) and returns the position it took before the first
// chunk, not a later one; with what the stream replays from there, the
// target ends with the source's rows, the edge values exactly, in tables
// it created from the source's definitions. (The e2e test streams for
// real.)
func TestSeedCopiesResumesAndKeepsItsPosition(t *testing.T) {
	src, dst := pair(t, 71, 72)
	src.MustExec(t, "SET time_zone='+00:00'", "CREATE DATABASE app DEFAULT CHARSET latin1", fmt.Sprintf(workload.EdgeTable, "app.edge"),
		"INSERT INTO app.edge VALUES "+workload.EdgeRows,
		"CREATE TABLE app.big (id INT PRIMARY KEY, k INT, c VARCHAR(60) CHARACTER SET utf8mb4, KEY (k)) DEFAULT CHARSET=latin1",
		"INSERT INTO app.big SELECT seq, seq % 97, CONCAT('ü', seq) FROM app.seq_1_to_6000")
	before, err := src.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := openStore(t, dir)
	snap, err := New(config(t, src, dst, store))
	if err != nil {
		t.Fatal(err)
	}
	if p := snap.Progress(); p != nil {
		t.Fatalf("progress before the first Seed: %+v", p)
	}
	snk := openSink(t, dst)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_ = harness.WaitFor(ctx, time.Minute, func() (bool, error) {
			p := snap.Progress()
			return p != nil && p.RowsCopied >= 1000, nil
		})
		cancel()
	}()
	if _, err := snap.Seed(ctx, snk); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Seed returned %v", err)
	}
	snk.Close()
	p1, done, ok, err := Position(store, "snap")
	if err != nil || !ok || done {
		t.Fatalf("state after the cancelled copy: ok %v done %v err %v", ok, done, err)
	}
	if p1.GTID != before {
		t.Fatalf("snapshot position %s, want the source's position %s (nothing was written in between)", p1, before)
	}
	// Writes after the position: the copy's resumed reads see them; the
	// stream from the position (not run here) would replay them.
	src.MustExec(t, "UPDATE app.big SET k = k + 1000 WHERE id <= 3000", "DELETE FROM app.big WHERE id > 5900")
	copied := snap.Progress().RowsCopied
	if copied < 1000 || copied >= 6006 {
		t.Fatalf("%d rows copied before the cancel, want a part", copied)
	}
	store.Close()

	store = openStore(t, dir)
	defer store.Close()
	snap, err = New(config(t, src, dst, store))
	if err != nil {
		t.Fatal(err)
	}
	snk = openSink(t, dst)
	defer snk.Close()
	pos, err := snap.Seed(context.Background(), snk)
	if err != nil {
		t.Fatal(err)
	}
	if got := srcmysql.EncodePosition(p1); string(pos) != string(got) {
		t.Fatalf("hand-off position %s, want the snapshot position %s", pos, got)
	}
	prog := snap.Progress()
	if prog.State != "done" || prog.TablesDone != 2 || prog.TablesTotal != 2 {
		t.Fatalf("progress after the copy: %+v", prog)
	}
	// What the stream from the position replays, as after-images: rows
	// the copy read before the update get the update's image again (rows
	// read after it already hold it), deleted rows go.
	dst.MustExec(t, "REPLACE INTO app.big SELECT seq, seq % 97 + 1000, CONCAT('ü', seq) FROM app.seq_1_to_3000", "DELETE FROM app.big WHERE id > 5900")
	for _, table := range []string{"app.edge", "app.big"} {
		if want, got := checksum(t, src, table), checksum(t, dst, table); want != got {
			t.Errorf("%s: target %s, source %s", table, got, want)
		}
	}
	if want, got := src.MustQuery(t, "SELECT "+workload.EdgeExact+" FROM app.edge ORDER BY id"), dst.MustQuery(t, "SELECT "+workload.EdgeExact+" FROM app.edge ORDER BY id"); fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("edge values differ:\n got %v\nwant %v", got, want)
	}
	if got := dst.MustQuery(t, "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'app'")[0][0]; got != "latin1" {
		t.Errorf("target schema app created with charset %s, want the source's latin1", got)
	}
	// Seeding again after it is done only returns the position.
	again, err := snap.Seed(context.Background(), snk)
	if err != nil || string(again) != string(pos) {
		t.Fatalf("Seed after done: %s, %v", again, err)
	}
}

// TestCheckRefuses: what a start refuses, each problem named with its fix,
// before anything is written: a keyless table, a target table with another
// definition (both definitions named), a non-empty target table, and a
// missing table with create_tables off.
func TestCheckRefuses(t *testing.T) {
	src, dst := pair(t, 73, 74)
	src.MustExec(t, "CREATE DATABASE app",
		"CREATE TABLE app.keyless (v INT) DEFAULT CHARSET=latin1",
		"CREATE TABLE app.differs (id INT PRIMARY KEY, name VARCHAR(20) CHARACTER SET latin1) DEFAULT CHARSET=latin1",
		"CREATE TABLE app.full (id INT PRIMARY KEY) DEFAULT CHARSET=latin1",
		"CREATE TABLE app.missing (id INT PRIMARY KEY) DEFAULT CHARSET=latin1",
		"CREATE TABLE app.same (id BIGINT PRIMARY KEY, v DOUBLE NOT NULL, UNIQUE KEY (v)) DEFAULT CHARSET=latin1")
	dst.MustExec(t, "CREATE DATABASE app",
		"CREATE TABLE app.differs (id INT PRIMARY KEY, name VARCHAR(20) CHARACTER SET utf8mb4) DEFAULT CHARSET=latin1",
		"CREATE TABLE app.full (id INT PRIMARY KEY) DEFAULT CHARSET=latin1", "INSERT INTO app.full VALUES (1)",
		// Same definition, other cosmetics: a comment and a default.
		"CREATE TABLE app.same (id BIGINT PRIMARY KEY COMMENT 'x', v DOUBLE NOT NULL DEFAULT 0, UNIQUE KEY (v)) DEFAULT CHARSET=latin1")
	store := openStore(t, t.TempDir())
	defer store.Close()
	cfg := config(t, src, dst, store)
	cfg.CreateTables = false
	rep, err := srcmysql.Preflight(context.Background(), cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Check(context.Background(), cfg, rep.Tables)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"app.keyless": {"neither a primary key nor a NOT NULL unique key", "add a primary key"},
		"app.differs": {"differs from the source's", "CHARACTER SET latin1", "CHARACTER SET utf8mb4",
			"source: CREATE TABLE `differs`", "target: CREATE TABLE `differs`", "drop it so the snapshot creates it"},
		"app.full":    {"is not empty", "TRUNCATE TABLE `app`.`full`"},
		"app.missing": {"lacks table app.missing and sink.create_tables is false", "set sink.create_tables: true"},
	}
	if len(got.Problems) != len(want) {
		t.Errorf("%d problems, want %d: %+v", len(got.Problems), len(want), got.Problems)
	}
	for table, subs := range want {
		found := false
		for _, p := range got.Problems {
			text := p.What + " fix: " + p.Fix
			if strings.Contains(p.What, table+" ") || strings.Contains(p.What, table+":") || strings.HasSuffix(p.What, table) {
				found = true
				for _, s := range subs {
					if !strings.Contains(text, s) {
						t.Errorf("problem of %s lacks %q: %s", table, s, text)
					}
				}
			}
		}
		if !found {
			t.Errorf("no problem names %s: %+v", table, got.Problems)
		}
	}
	// A refused start writes nothing: no state, no table.
	snap, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	snk := openSink(t, dst)
	defer snk.Close()
	var refused *Refused
	if _, err := snap.Seed(context.Background(), snk); !errors.As(err, &refused) || len(refused.Problems) != len(want) {
		t.Fatalf("Seed: %v, want the refusal with %d problems", err, len(want))
	}
	if _, _, ok, _ := Position(store, "snap"); ok {
		t.Error("a refused snapshot saved a state")
	}
	if n := dst.MustQuery(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='app'")[0][0]; n != "3" {
		t.Errorf("target has %s tables in app after the refusal, want its 3", n)
	}
}
