package tablecopy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

func connect(t *testing.T, s *harness.Server, opts ...client.Option) *client.Conn {
	t.Helper()
	c, err := client.Connect(s.Addr, "root", "", "", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func source(s *harness.Server) Source {
	return Source{Name: "source " + s.Addr, Dial: func(ctx context.Context) (*client.Conn, error) {
		return client.ConnectWithContext(ctx, s.Addr, "root", "", "", 0)
	}}
}

func target(s *harness.Server) *ConnTarget {
	return &ConnTarget{Name: "target " + s.Addr, Dial: func(ctx context.Context) (*client.Conn, error) {
		return client.ConnectWithContext(ctx, s.Addr, "root", "", "", 0, LocalFiles)
	}}
}

// exactRows lists a table's rows by workload.EdgeExact, in key order.
func exactRows(t *testing.T, s *harness.Server, table string) []string {
	t.Helper()
	var out []string
	for _, r := range s.MustQuery(t, "SELECT "+workload.EdgeExact+" FROM "+table+" ORDER BY id") {
		out = append(out, strings.Join(r, "|"))
	}
	return out
}

func rowHashes(t *testing.T, s *harness.Server, tbl *Table, name string) []string {
	t.Helper()
	var out []string
	for _, r := range s.MustQuery(t, "SELECT id, "+RowHash(tbl.Columns)+" FROM "+name+" ORDER BY id") {
		out = append(out, r[0]+":"+r[1])
	}
	return out
}

func equalLists(t *testing.T, what string, want, got []string) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range want {
		if want[i] != got[i] {
			t.Errorf("%s row %d:\n got %s\nwant %s", what, i, got[i], want[i])
		}
	}
}

// TestCopyEdgeValuesExact copies the edge-value table in both formats and
// requires every value back exactly, FLOAT digits, BIT, YEAR 0000, latin1
// bytes and all; then makes the target lossy the way a text-protocol copy
// is (FLOAT to 6 digits) and requires RowHash to see it.
func TestCopyEdgeValuesExact(t *testing.T) {
	var src, dst *harness.Server
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); src = harness.MariaDB(t, harness.Options{ServerID: 61}) }()
	go func() { defer wg.Done(); dst = harness.MariaDB(t, harness.Options{ServerID: 62}) }()
	wg.Wait()
	if src == nil || dst == nil {
		t.FailNow()
	}
	src.MustExec(t, "SET time_zone='+00:00'", "CREATE DATABASE e", fmt.Sprintf(workload.EdgeTable, "e.edge"),
		"INSERT INTO e.edge VALUES "+workload.EdgeRows)
	want := exactRows(t, src, "e.edge")
	for _, f := range []Format{FormatLoad, FormatInsert} {
		t.Run(f.String(), func(t *testing.T) {
			dst.MustExec(t, "DROP DATABASE IF EXISTS e", "CREATE DATABASE e", fmt.Sprintf(workload.EdgeTable, "e.edge"))
			if f == FormatInsert {
				// Statements small enough that a chunk takes several.
				defer func(old int) { maxStatementBytes = old }(maxStatementBytes)
				maxStatementBytes = 1000
			}
			tbl, err := Describe(connect(t, src), "e", "edge")
			if err != nil {
				t.Fatal(err)
			}
			tg := target(dst)
			defer tg.Close()
			var saved []Segment
			c, err := New(Options{Sources: []Source{source(src)}, Targets: []Target{tg}, Format: f, ChunkRows: 2,
				Tables: map[string]*Table{"e.edge": tbl}, Save: func(_ string, s Segment) error { saved = append(saved, s); return nil }})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Run(context.Background(), map[string]Segment{"0": {Table: "e.edge"}}); err != nil {
				t.Fatal(err)
			}
			if got := c.Formats()[0]; got != f {
				t.Fatalf("copied with %s, want %s", got, f)
			}
			if last := saved[len(saved)-1]; !last.Done || last.Rows != 6 {
				t.Fatalf("last saved segment %+v, want done with 6 rows", last)
			}
			equalLists(t, "exact values", want, exactRows(t, dst, "e.edge"))
			equalLists(t, "row hashes", rowHashes(t, src, tbl, "e.edge"), rowHashes(t, dst, tbl, "e.edge"))

			// A lossy copy: FLOAT through its 6-digit text.
			dst.MustExec(t, "UPDATE e.edge SET f = CAST(CAST(f AS CHAR) AS DOUBLE)")
			got := rowHashes(t, dst, tbl, "e.edge")
			differ := 0
			for i, h := range rowHashes(t, src, tbl, "e.edge") {
				if h != got[i] {
					differ++
				}
			}
			if differ < 4 { // ids 1-5 hold floats beyond 6 digits; 0.1 rounds back to itself
				t.Errorf("RowHash sees %d of the rows whose FLOAT lost digits, want at least 4", differ)
			}
		})
	}
}

// TestCopyResumesAfterSavedKey: a copy cancelled midway resumes from the
// segments it saved and ends with every row exactly once, over a composite
// key with a latin1 text column and split ranges of an integer key.
func TestCopyResumesAfterSavedKey(t *testing.T) {
	var src, dst *harness.Server
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); src = harness.MariaDB(t, harness.Options{ServerID: 63}) }()
	go func() { defer wg.Done(); dst = harness.MariaDB(t, harness.Options{ServerID: 64}) }()
	wg.Wait()
	if src == nil || dst == nil {
		t.FailNow()
	}
	ddl := []string{"CREATE DATABASE r",
		"CREATE TABLE r.c (tenant VARCHAR(10) CHARACTER SET latin1 NOT NULL, id INT NOT NULL, v INT, PRIMARY KEY (tenant, id)) DEFAULT CHARSET=latin1",
		"CREATE TABLE r.n (id BIGINT PRIMARY KEY, pad VARCHAR(50)) DEFAULT CHARSET=latin1"}
	src.MustExec(t, ddl...)
	dst.MustExec(t, ddl...)
	src.MustExec(t, "INSERT INTO r.c SELECT CONCAT(CHAR(0xE9 + seq % 3), 't', seq % 7), seq DIV 7, seq FROM r.seq_1_to_3000",
		"INSERT INTO r.n SELECT seq * 3, REPEAT('x', seq % 50) FROM r.seq_1_to_5000")
	sc := connect(t, src)
	tables := map[string]*Table{}
	segs := map[string]Segment{}
	for _, name := range []string{"c", "n"} {
		tbl, err := Describe(sc, "r", name)
		if err != nil {
			t.Fatal(err)
		}
		tables[tbl.String()] = tbl
		parts, err := Split(sc, tbl, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range parts {
			segs[fmt.Sprintf("%s/%d", tbl, i)] = s
		}
	}
	if n := len(segs); n != 4 { // r.c: one (text first column); r.n: three ranges
		t.Fatalf("%d segments, want 4", n)
	}
	tg := target(dst)
	defer tg.Close()
	var mu sync.Mutex
	saves := 0
	ctx, cancel := context.WithCancel(context.Background())
	opts := Options{Sources: []Source{source(src)}, Targets: []Target{tg}, Tables: tables, Workers: 2, ChunkRows: 250,
		Save: func(k string, s Segment) error {
			mu.Lock()
			defer mu.Unlock()
			segs[k] = s
			if saves++; saves == 12 {
				cancel()
			}
			return nil
		}}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx, clone(&mu, segs)); err == nil {
		t.Fatal("cancelled copy returned nil")
	}
	mu.Lock()
	partial := 0
	for _, s := range segs {
		if !s.Done {
			partial++
		}
	}
	mu.Unlock()
	if partial == 0 {
		t.Fatal("the copy finished before it was cancelled")
	}
	if err := c.Run(context.Background(), clone(&mu, segs)); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"r.c", "r.n"} {
		q := "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', " + map[string]string{"r.c": "HEX(tenant), id, v", "r.n": "id, pad"}[table] + "))) FROM " + table
		if w, g := src.MustQuery(t, q)[0], dst.MustQuery(t, q)[0]; w[0] != g[0] || w[1] != g[1] {
			t.Errorf("%s: target %v, source %v", table, g, w)
		}
	}
	var rows int64
	for _, s := range segs {
		rows += s.Rows
	}
	if rows < 8000 {
		t.Errorf("segments count %d rows, want at least 8000", rows)
	}
}

func clone(mu *sync.Mutex, m map[string]Segment) map[string]Segment {
	mu.Lock()
	defer mu.Unlock()
	out := make(map[string]Segment, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestLocalInfileRefusedFallsBackToInsert: a target with local_infile off
// is copied with REPLACE statements, exactly.
func TestLocalInfileRefusedFallsBackToInsert(t *testing.T) {
	srv := harness.MariaDB(t, harness.Options{ServerID: 65, Args: []string{"--local-infile=0"}})
	srv.MustExec(t, "SET time_zone='+00:00'", "CREATE DATABASE e", "CREATE DATABASE f",
		fmt.Sprintf(workload.EdgeTable, "e.edge"), fmt.Sprintf(workload.EdgeTable, "f.edge"), "INSERT INTO e.edge VALUES "+workload.EdgeRows)
	tbl, err := Describe(connect(t, srv), "e", "edge")
	if err != nil {
		t.Fatal(err)
	}
	tbl.Target = "f.edge"
	tg := target(srv)
	defer tg.Close()
	c, err := New(Options{Sources: []Source{source(srv)}, Targets: []Target{tg}, Tables: map[string]*Table{"e.edge": tbl}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background(), map[string]Segment{"0": {Table: "e.edge"}}); err != nil {
		t.Fatal(err)
	}
	if got := c.Formats()[0]; got != FormatInsert {
		t.Fatalf("format %s, want insert after the refusal", got)
	}
	equalLists(t, "exact values", exactRows(t, srv, "e.edge"), exactRows(t, srv, "f.edge"))
}
