package mysql

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/hamal-replication/hamal/event"
)

// syncBuffer is a log sink safe for the sink's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestUniqueReplacement: on a one-way channel, an incoming row whose
// unique value a different target row holds replaces it as before, and
// the removal is counted for its table and logged with the removed row's
// key; a same-key replace, a replay, a unique value moved between rows of
// one batch and a NULL unique value count nothing.
func TestUniqueReplacement(t *testing.T) {
	tbl := table("ur", "u", []string{"id", "email", "v?", "alt?"}, []int{0},
		event.UniqueKey{Name: "uk", Columns: []int{1}}, event.UniqueKey{Name: "alt", Columns: []int{3}})
	mustExec(t, "DROP DATABASE IF EXISTS ur", "CREATE DATABASE ur CHARACTER SET utf8mb4",
		"CREATE TABLE ur.u (id INT PRIMARY KEY, email VARCHAR(20) NOT NULL, v VARCHAR(10), alt INT, UNIQUE KEY uk (email), UNIQUE KEY alt (alt))",
		"INSERT INTO ur.u VALUES (1, 'e', 'secret1', NULL), (5, 'f', 'x', NULL), (6, 'g', 'y', NULL), (7, 'h', 'z', 70)")
	logs := &syncBuffer{}
	s := openSink(t, Config{Workers: 1, Channel: "ur", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	count := func() uint64 { return s.UniqueReplacements()["ur.u"] }

	// A collision: 2 takes e, which only the target's row 1 held.
	x := txn(ins(tbl, int32(2), "e", "new", nil))
	apply(t, s, x)
	if got := rows(t, "SELECT id, email, v FROM ur.u WHERE id < 5 ORDER BY id"); got != "2,e,new" {
		t.Errorf("rows %q, want 2,e,new: REPLACE semantics (row 1 removed)", got)
	}
	if n := count(); n != 1 {
		t.Errorf("UniqueReplacements = %v, want 1 for ur.u", s.UniqueReplacements())
	}
	if l := logs.String(); !strings.Contains(l, "table=ur.u") || !strings.Contains(l, `removed_row_key="id=1"`) || strings.Contains(l, "secret1") {
		t.Errorf("log %q: want the table and the removed row's key, and no row data", l)
	}

	// A same-key replace, a replay of x, a move of f and g between 5 and
	// 6 inside one batch, and NULL alt values: none removes another row.
	apply(t, s, txn(upd(tbl, row(int32(2), "e", "new", nil), row(int32(2), "e", "newer", nil))))
	apply(t, s, x)
	apply(t, s, txn(upd(tbl, row(int32(5), "f", "x", nil), row(int32(5), "tmp", "x", nil)), upd(tbl, row(int32(6), "g", "y", nil), row(int32(6), "f", "y", nil)),
		upd(tbl, row(int32(5), "tmp", "x", nil), row(int32(5), "g", "x", nil))))
	if n := count(); n != 1 {
		t.Errorf("UniqueReplacements = %d after same-key replaces, a replay and a move, want still 1", n)
	}
	if got := rows(t, "SELECT id, email, v FROM ur.u ORDER BY id"); got != "2,e,new;5,g,x;6,f,y;7,h,z" {
		t.Errorf("rows %q", got)
	}

	// Two collisions in one batch, through the second unique key too.
	apply(t, s, txn(ins(tbl, int32(8), "i", "a", int32(70)), ins(tbl, int32(9), "g", "b", nil)))
	if got := rows(t, "SELECT id, email FROM ur.u ORDER BY id"); got != "2,e;6,f;8,i;9,g" {
		t.Errorf("rows %q, want 5 and 7 replaced by 9 and 8", got)
	}
	if n := count(); n != 3 {
		t.Errorf("UniqueReplacements = %d, want 3", n)
	}
}

// TestUniqueReplacementStatements: a one-way unit reads the rows its
// REPLACEs would remove only for a table with a unique key besides its row
// key, in the same round trip as the data; a table without one gets no
// extra statement.
func TestUniqueReplacementStatements(t *testing.T) {
	plain := table("urs", "plain", []string{"id", "email"}, []int{0})
	uniq := table("urs", "uniq", []string{"id", "email"}, []int{0}, event.UniqueKey{Name: "uk", Columns: []int{1}})
	mustExec(t, "DROP DATABASE IF EXISTS urs", "CREATE DATABASE urs",
		"CREATE TABLE urs.plain (id INT PRIMARY KEY, email VARCHAR(20) NOT NULL)",
		"CREATE TABLE urs.uniq (id INT PRIMARY KEY, email VARCHAR(20) NOT NULL, UNIQUE KEY uk (email))")
	s := openSink(t, Config{Workers: 1, Channel: "urs"})
	for _, tc := range []struct {
		tbl     *event.Table
		tables  string // the tables of the queued statements
		selects int
	}{
		{plain, "urs.plain", 0},
		{uniq, "urs.uniq,urs.uniq", 1},
	} {
		t.Run(tc.tbl.Name, func(t *testing.T) {
			ctx := context.Background()
			u, err := s.Begin(ctx, []*event.Txn{txn(ins(tc.tbl, int32(1), "a"), ins(tc.tbl, int32(2), "b"))})
			if err != nil {
				t.Fatal(err)
			}
			un := u.(*unit)
			if err := u.Write(ctx); err != nil {
				u.Abort()
				t.Fatal(err)
			}
			queued := string(un.st.queued)
			tables := strings.Join(un.st.queuedTables, ",")
			if err := u.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if tables != tc.tables {
				t.Errorf("queued statements about %q, want %q: %s", tables, tc.tables, queued)
			}
			if n := strings.Count(queued, "SELECT "); n != tc.selects {
				t.Errorf("%d SELECTs queued, want %d: %s", n, tc.selects, queued)
			}
			if got := rows(t, "SELECT id, email FROM urs."+tc.tbl.Name+" ORDER BY id"); got != "1,a;2,b" {
				t.Errorf("rows %q", got)
			}
		})
	}
	if n := s.UniqueReplacements(); len(n) != 0 {
		t.Errorf("UniqueReplacements = %v, want none", n)
	}
}
