package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
)

const conformanceDDL = `
CREATE TABLE %[1]s.users (id INT PRIMARY KEY, email VARCHAR(64) NOT NULL UNIQUE, name VARCHAR(64) NULL);
CREATE TABLE %[1]s.pairs (a INT, b VARCHAR(10), v INT, PRIMARY KEY (a, b));
CREATE TABLE %[1]s.ukonly (code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY code (code))`

// conformanceTxns is a source history exercising what replay must survive:
// a unique value moving between rows, PK changes (also case-only ones under
// a case-insensitive collation), a composite PK, a NOT NULL unique key as
// row key, deletes, re-inserts and several changes of one row in one Txn.
func conformanceTxns(schema string) []*event.Txn {
	users := table(schema, "users", []string{"id", "email", "name?"}, []int{0},
		event.UniqueKey{Name: "email", Columns: []int{1}})
	pairs := table(schema, "pairs", []string{"a", "b", "v?"}, []int{0, 1})
	ukonly := table(schema, "ukonly", []string{"code", "v?"}, nil, event.UniqueKey{Name: "code", Columns: []int{0}})
	return []*event.Txn{
		txn(ins(users, int32(1), "a@x", "A"), ins(users, int32(2), "b@x", "B"), ins(users, int32(3), "c@x", nil)),
		txn(ins(pairs, int32(1), "x", int32(10)), ins(pairs, int32(1), "y", int32(20)), ins(pairs, int32(2), "x", int32(30))),
		txn(upd(users, row(int32(1), "a@x", "A"), row(int32(1), "a2@x", "A"))),
		txn(upd(users, row(int32(2), "b@x", "B"), row(int32(2), "a@x", "B"))), // a@x moved from row 1 to row 2
		txn(del(users, int32(3), "c@x", nil)),
		txn(upd(users, row(int32(2), "a@x", "B"), row(int32(20), "a@x", "B2"))), // PK change
		txn(upd(pairs, row(int32(1), "x", int32(10)), row(int32(1), "z", int32(11)))),
		txn(ins(users, int32(3), "c@x", nil)),
		txn(del(pairs, int32(2), "x", int32(30))),
		txn(upd(users, row(int32(1), "a2@x", "A"), row(int32(1), "a2@x", "n1")),
			upd(users, row(int32(1), "a2@x", "n1"), row(int32(1), "a2@x", "n2")),
			ins(users, int32(4), "d@x", nil), del(users, int32(4), "d@x", nil),
			ins(users, int32(5), "e@x", "E")),
		txn(upd(users, row(int32(20), "a@x", "B2"), row(int32(20), "tmp@x", "B2")), // swap two unique values
			upd(users, row(int32(5), "e@x", "E"), row(int32(5), "a@x", "E")),
			upd(users, row(int32(20), "tmp@x", "B2"), row(int32(20), "e@x", "B2"))),
		txn(upd(users, row(int32(3), "c@x", nil), row(int32(3), "c2@x", nil)),
			upd(users, row(int32(1), "a2@x", "n2"), row(int32(1), "c@x", "n2"))),
		txn(upd(pairs, row(int32(1), "y", int32(20)), row(int32(1), "Y", int32(20)))), // case-only PK change
		txn(ins(ukonly, "k1", int32(1)), ins(ukonly, "k2", int32(2))),
		txn(upd(ukonly, row("k1", int32(1)), row("k3", int32(3)))),
		txn(del(ukonly, "k2", int32(2))),
		txn(del(users, int32(20), "e@x", "B2"), ins(users, int32(20), "z@x", "again")),
		txn(upd(users, row(int32(1), "c@x", "n2"), row(int32(100), "c@x", "n2")), // swap PKs of rows 1 and 3
			upd(users, row(int32(3), "c2@x", nil), row(int32(1), "c2@x", nil)),
			upd(users, row(int32(100), "c@x", "n2"), row(int32(3), "c@x", "n2"))),
	}
}

// refSQL renders a change as the plain statement a source would have run.
func refSQL(schema string, c *event.Change) string {
	lit := func(v any) string {
		switch x := v.(type) {
		case nil:
			return "NULL"
		case string:
			return quoteString(x)
		}
		return fmt.Sprint(v)
	}
	where := func(img []any) string {
		cols, _ := c.Table.RowKey()
		var parts []string
		for _, k := range cols {
			parts = append(parts, fmt.Sprintf("BINARY %s = %s", quoteIdent(c.Table.Columns[k].Name), lit(img[k])))
		}
		return strings.Join(parts, " AND ")
	}
	name := schema + "." + c.Table.Name
	switch c.Op {
	case event.OpInsert:
		var vals []string
		for _, v := range c.After {
			vals = append(vals, lit(v))
		}
		return fmt.Sprintf("INSERT INTO %s VALUES (%s)", name, strings.Join(vals, ","))
	case event.OpDelete:
		return fmt.Sprintf("DELETE FROM %s WHERE %s", name, where(c.Before))
	}
	var sets []string
	for i, v := range c.After {
		sets = append(sets, fmt.Sprintf("%s = %s", quoteIdent(c.Table.Columns[i].Name), lit(v)))
	}
	return fmt.Sprintf("UPDATE %s SET %s WHERE %s", name, strings.Join(sets, ", "), where(c.Before))
}

func createSchema(t testing.TB, schema, ddl string) {
	t.Helper()
	// The tables hold any text: their schema says utf8mb4, as a server
	// without a charset option (a matrix row) would otherwise give latin1.
	stmts := []string{"DROP DATABASE IF EXISTS " + schema, "CREATE DATABASE " + schema + " CHARACTER SET utf8mb4"}
	for _, s := range strings.Split(fmt.Sprintf(ddl, schema), ";") {
		if strings.TrimSpace(s) != "" {
			stmts = append(stmts, s)
		}
	}
	mustExec(t, stmts...)
}

var conformanceTables = []struct{ name, orderBy, hexCols string }{
	{"users", "id", "CONCAT_WS('|', HEX(id), HEX(email), IFNULL(HEX(name), 'NULL'))"},
	{"pairs", "a, b", "CONCAT_WS('|', HEX(a), HEX(b), IFNULL(HEX(v), 'NULL'))"},
	{"ukonly", "code", "CONCAT_WS('|', HEX(code), IFNULL(HEX(v), 'NULL'))"},
}

// snapshot is the harness's TableChecksum of every conformance table.
func snapshot(t testing.TB, schema string) string {
	t.Helper()
	var parts []string
	for _, tb := range conformanceTables {
		sum, n := checksum(t, schema+"."+tb.name, tb.orderBy)
		parts = append(parts, fmt.Sprintf("%s:%d:%s", tb.name, n, sum))
	}
	return strings.Join(parts, " ")
}

// quickSnapshot is the full hex contents of every conformance table, read
// over one connection: cheaper than snapshot for the many replay rounds.
func quickSnapshot(t testing.TB, c *client.Conn, schema string) string {
	t.Helper()
	var parts []string
	for _, tb := range conformanceTables {
		r, err := c.Execute(fmt.Sprintf("SELECT %s FROM %s.%s ORDER BY %s", tb.hexCols, schema, tb.name, tb.orderBy))
		if err != nil {
			t.Fatal(err)
		}
		for i := range r.Values {
			v, _ := r.GetString(i, 0)
			parts = append(parts, tb.name+":"+v)
		}
	}
	return strings.Join(parts, " ")
}

// referenceStates runs the history as plain SQL on schema ref and returns
// the snapshot after each prefix (index i: after the first i Txns).
func referenceStates(t *testing.T, ref string, txns []*event.Txn) []string {
	createSchema(t, ref, conformanceDDL)
	states := []string{snapshot(t, ref)}
	for _, tx := range txns {
		stmts := []string{"BEGIN"}
		for i := range tx.Changes {
			stmts = append(stmts, refSQL(ref, &tx.Changes[i]))
		}
		mustExec(t, append(stmts, "COMMIT")...)
		states = append(states, snapshot(t, ref))
	}
	return states
}

func truncateAll(t testing.TB, schema string) {
	var stmts []string
	for _, tb := range conformanceTables {
		stmts = append(stmts, "DELETE FROM "+schema+"."+tb.name)
	}
	mustExec(t, stmts...)
}

func TestConformance(t *testing.T) {
	const schema, ref = "conf", "confref"
	txns := conformanceTxns(schema)
	want := referenceStates(t, ref, txns)
	final := want[len(txns)]
	createSchema(t, schema, conformanceDDL)
	s := openSink(t, Config{Workers: 2})

	t.Run("one txn per batch, every prefix", func(t *testing.T) {
		truncateAll(t, schema)
		for i, tx := range txns {
			apply(t, s, tx)
			if got := snapshot(t, schema); got != want[i+1] {
				t.Fatalf("after txn %d:\n got %s\nwant %s", i+1, got, want[i+1])
			}
		}
	})

	t.Run("whole history in one batch", func(t *testing.T) {
		truncateAll(t, schema)
		apply(t, s, txns...)
		if got := snapshot(t, schema); got != final {
			t.Fatalf("got %s\nwant %s", got, final)
		}
	})

	t.Run("replay of every suffix after every crash point", func(t *testing.T) {
		c, err := server.Connect("")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		truncateAll(t, schema)
		apply(t, s, txns...)
		wantQuick := quickSnapshot(t, c, schema)
		if got := snapshot(t, schema); got != final {
			t.Fatalf("got %s\nwant %s", got, final)
		}
		// Applied up to m, checkpoint at k-1 ≤ m: the restart replays k..N.
		for m := 1; m <= len(txns); m++ {
			for k := 1; k <= m; k++ {
				truncateAll(t, schema)
				for _, tx := range txns[:m] {
					apply(t, s, tx)
				}
				if (m+k)%2 == 0 {
					for _, tx := range txns[k-1:] {
						apply(t, s, tx)
					}
				} else {
					apply(t, s, txns[k-1:]...) // coalesced replay
				}
				if got := quickSnapshot(t, c, schema); got != wantQuick {
					t.Fatalf("applied 1..%d, replayed %d..%d:\n got %s\nwant %s", m, k, len(txns), got, wantQuick)
				}
			}
		}
	})

	t.Run("independent txns coalesce into multi-row statements", func(t *testing.T) {
		truncateAll(t, schema)
		mustExec(t, "TRUNCATE TABLE "+ref+".users")
		users := txns[0].Changes[0].Table
		var batch []*event.Txn
		var refRows []string
		for i := range 2500 { // more than one statement chunk
			id := int32(1000 + i)
			email := fmt.Sprintf("u%d@x", i)
			batch = append(batch, txn(ins(users, id, email, "n")))
			refRows = append(refRows, fmt.Sprintf("(%d,'%s','n')", id, email))
		}
		mustExec(t, "INSERT INTO "+ref+".users VALUES "+strings.Join(refRows, ","))
		before := countStatements(t, "Com_replace")
		apply(t, s, batch...)
		if n := countStatements(t, "Com_replace") - before; n != 3 {
			t.Errorf("2500 rows took %d REPLACE statements, want 3", n)
		}
		a, na := checksum(t, schema+".users", "id")
		b, nb := checksum(t, ref+".users", "id")
		if a != b || na != nb || na != 2500 {
			t.Fatalf("sink %d rows %s, reference %d rows %s", na, a, nb, b)
		}
		// Deleting them all again is one chunked DELETE per 1000 keys.
		batch = batch[:0]
		for i := range 2500 {
			batch = append(batch, txn(del(users, int32(1000+i), fmt.Sprintf("u%d@x", i), "n")))
		}
		apply(t, s, batch...)
		if _, n := checksum(t, schema+".users", "id"); n != 0 {
			t.Fatalf("%d rows left after deleting all", n)
		}
	})
}

// countStatements reads a global status counter (the sink's sessions
// count into it).
func countStatements(t testing.TB, name string) int {
	t.Helper()
	var n int
	fmt.Sscan(server.MustQuery(t, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME="+quoteString(strings.ToUpper(name)))[0][0], &n)
	return n
}

func TestSchemaMismatch(t *testing.T) {
	createSchema(t, "mis", "CREATE TABLE %[1]s.t (id INT PRIMARY KEY, v INT)")
	s := openSink(t, Config{Workers: 1})
	ctx := context.Background()
	tests := []struct {
		name string
		tbl  *event.Table
		want []string
	}{
		{"missing table", table("mis", "nope", []string{"id"}, []int{0}),
			[]string{"target table mis.nope does not exist", "create it on the target", "pos-"}},
		{"missing columns", table("mis", "t", []string{"id", "v", "extra", "more"}, []int{0}),
			[]string{"mis.t", "extra, more", "ALTER TABLE `mis`.`t` ADD COLUMN `extra`", "pos-"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vals := make([]any, len(tc.tbl.Columns))
			for i := range vals {
				vals[i] = int32(1)
			}
			tx := txn(ins(tc.tbl, vals...))
			err := s.Apply(ctx, []*event.Txn{tx})
			if err == nil || retry.IsTransient(err) {
				t.Fatalf("Apply error = %v, want a fatal error", err)
			}
			for _, w := range append(tc.want, string(tx.Pos)) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			var names []string
			for _, c := range tc.tbl.Columns {
				names = append(names, c.Name)
			}
			err = s.CheckTable(ctx, tc.tbl.Schema, tc.tbl.Name, names)
			if err == nil || !strings.Contains(err.Error(), tc.want[0]) {
				t.Errorf("CheckTable error = %v, want it to mention %q", err, tc.want[0])
			}
		})
	}
	if err := s.CheckTable(ctx, "mis", "t", []string{"ID", "v"}); err != nil {
		t.Errorf("CheckTable of a matching table: %v", err)
	}
	// Once the operator fixes the target, the next attempt succeeds.
	mustExec(t, "ALTER TABLE mis.t ADD COLUMN extra INT, ADD COLUMN more INT")
	apply(t, s, txn(ins(tests[1].tbl, int32(2), int32(1), int32(1), int32(1))))
	// The connection is still usable after the fatal errors.
	tbl := table("mis", "t", []string{"id", "v?"}, []int{0})
	apply(t, s, txn(ins(tbl, int32(7), int32(70))))
	if got := rows(t, "SELECT id, v FROM mis.t ORDER BY id"); got != "2,1;7,70" {
		t.Errorf("rows = %q", got)
	}
}

func TestKeyless(t *testing.T) {
	createSchema(t, "kl", `CREATE TABLE %[1]s.log (a INT, b VARCHAR(10), f FLOAT);
		CREATE TABLE %[1]s.other (a INT, b INT)`)
	s := openSink(t, Config{Workers: 1, AllowKeyless: []string{"kl.lo*"}})
	logT := table("kl", "log", []string{"a?", "b?", "f?"}, nil)
	t.Run("allowed", func(t *testing.T) {
		apply(t, s, txn(ins(logT, int32(1), "x", float32(0.1)), ins(logT, int32(1), "x", float32(0.1)),
			ins(logT, int32(2), nil, float32(2.5))))
		apply(t, s, txn(del(logT, int32(1), "x", float32(0.1))))                               // removes one of two equal rows
		apply(t, s, txn(upd(logT, row(int32(2), nil, float32(2.5)), row(int32(3), "z", nil)))) // NULL-safe match
		apply(t, s, txn(del(logT, int32(9), "gone", nil)))                                     // missing row: no-op
		if got := rows(t, "SELECT a, b, f FROM kl.log ORDER BY a"); got != "1,x,0.1;3,z,NULL" {
			t.Errorf("rows = %q", got)
		}
	})
	t.Run("not allowed", func(t *testing.T) {
		other := table("kl", "other", []string{"a?", "b?"}, nil)
		err := s.Apply(context.Background(), []*event.Txn{txn(ins(other, int32(1), int32(2)))})
		if err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), "kl.other") ||
			!strings.Contains(err.Error(), "allow_keyless_tables") || !strings.Contains(err.Error(), "primary key") {
			t.Fatalf("error = %v, want a fatal error naming kl.other and the fix", err)
		}
		if got := rows(t, "SELECT COUNT(*) FROM kl.other"); got != "0" {
			t.Errorf("rows = %q", got)
		}
	})
}

func TestTransientErrors(t *testing.T) {
	createSchema(t, "tr", "CREATE TABLE %[1]s.t (id INT PRIMARY KEY, v INT)")
	mustExec(t, "INSERT INTO tr.t VALUES (1, 0)", "SET GLOBAL innodb_lock_wait_timeout = 1")
	t.Cleanup(func() { mustExec(t, "SET GLOBAL innodb_lock_wait_timeout = 50") })
	s := openSink(t, Config{Workers: 1})
	tbl := table("tr", "t", []string{"id", "v?"}, []int{0})
	ctx := context.Background()

	t.Run("lock wait timeout", func(t *testing.T) {
		holder, err := server.Connect("")
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		if _, err := holder.Execute("BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := holder.Execute("SELECT * FROM tr.t WHERE id = 1 FOR UPDATE"); err != nil {
			t.Fatal(err)
		}
		tx := txn(upd(tbl, row(int32(1), int32(0)), row(int32(1), int32(1))))
		err = s.Apply(ctx, []*event.Txn{tx})
		if !retry.IsTransient(err) || serverCode(err) != erLockWaitTimeout || !strings.Contains(err.Error(), "tr.t") ||
			!strings.Contains(err.Error(), string(tx.Pos)) {
			t.Fatalf("error = %v, want a transient lock wait timeout naming tr.t and %s", err, tx.Pos)
		}
		if _, err := holder.Execute("ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		apply(t, s, tx) // the retry succeeds
		if got := rows(t, "SELECT v FROM tr.t WHERE id = 1"); got != "1" {
			t.Errorf("v = %q", got)
		}
	})

	t.Run("killed connection", func(t *testing.T) {
		apply(t, s, txn(upd(tbl, row(int32(1), int32(1)), row(int32(1), int32(2)))))
		leaseID := s.lease.connID
		for _, r := range server.MustQuery(t, fmt.Sprintf(
			"SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND ID <> %d AND USER = 'root'", leaseID)) {
			// A connection may end between the listing and the KILL
			// (ER_NO_SUCH_THREAD): it is gone either way.
			if err := server.Exec("KILL " + r[0]); err != nil && serverCode(err) != 1094 {
				t.Fatal(err)
			}
		}
		tx := txn(upd(tbl, row(int32(1), int32(2)), row(int32(1), int32(3))))
		err := s.Apply(ctx, []*event.Txn{tx})
		if !retry.IsTransient(err) {
			t.Fatalf("error = %v, want transient", err)
		}
		apply(t, s, tx)
		if got := rows(t, "SELECT v FROM tr.t WHERE id = 1"); got != "3" {
			t.Errorf("v = %q", got)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := s.Apply(cctx, []*event.Txn{txn(upd(tbl, row(int32(1), int32(3)), row(int32(1), int32(4))))})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
		apply(t, s, txn(upd(tbl, row(int32(1), int32(3)), row(int32(1), int32(5)))))
		if got := rows(t, "SELECT v FROM tr.t WHERE id = 1"); got != "5" {
			t.Errorf("v = %q", got)
		}
	})
}
