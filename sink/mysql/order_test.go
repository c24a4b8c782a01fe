package mysql

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/event"
)

// TestStatementOrder: a flush writes tables in name order and rows in key
// order, whatever order the batch touched them in, so concurrent workers
// take row locks in one order (fewer deadlocks); and the whole batch,
// lease proof and COMMIT included, goes in one round trip. The statements are read back
// from the server's general log.
func TestStatementOrder(t *testing.T) {
	const schema = "lockorder"
	createSchema(t, schema, `CREATE TABLE %[1]s.b (id INT PRIMARY KEY, v VARCHAR(10)) DEFAULT CHARSET=utf8mb4;
		CREATE TABLE %[1]s.a (id INT PRIMARY KEY, v VARCHAR(10)) DEFAULT CHARSET=utf8mb4`)
	ta := table(schema, "a", []string{"id", "v"}, []int{0})
	tb := table(schema, "b", []string{"id", "v"}, []int{0})
	mustExec(t, "INSERT INTO lockorder.a VALUES (7,'x'),(5,'x'),(6,'x')")
	s := openSink(t, Config{})

	mustExec(t, "TRUNCATE mysql.general_log", "SET GLOBAL log_output='TABLE'", "SET GLOBAL general_log=1")
	t.Cleanup(func() { mustExec(t, "SET GLOBAL general_log=0") })
	apply(t, s,
		txn(ins(tb, int32(30), "b30"), ins(ta, int32(3), "a3")),
		txn(ins(tb, int32(10), "b10"), del(ta, int32(7), "x")),
		txn(ins(ta, int32(1), "a1"), ins(tb, int32(20), "b20"), del(ta, int32(5), "x")),
		txn(ins(ta, int32(2), "a2"), del(ta, int32(6), "x")),
	)
	mustExec(t, "SET GLOBAL general_log=0")

	var sent []string
	for _, r := range server.MustQuery(t, "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE command_type='Query' AND argument LIKE '%lockorder%' ORDER BY event_time") {
		if q := r[0]; strings.HasPrefix(q, "DELETE") || strings.HasPrefix(q, "REPLACE") {
			sent = append(sent, q)
		}
	}
	want := []string{
		"DELETE FROM `lockorder`.`a` WHERE `id` IN (5,6,7)",
		"REPLACE INTO `lockorder`.`a` (`id`,`v`) VALUES (1,'a1'),(2,'a2'),(3,'a3')",
		"REPLACE INTO `lockorder`.`b` (`id`,`v`) VALUES (10,'b10'),(20,'b20'),(30,'b30')",
		// The lease proof, after the data (every row locked), before COMMIT.
		fmt.Sprintf("SET autocommit=IF(IS_USED_LOCK('hamal/TestStatementOrder')<=>%d,@@autocommit,2)", s.lease.connID),
		"COMMIT",
	}
	if len(sent) != 1 {
		t.Fatalf("the batch took %d round trips, want 1:\n%s", len(sent), strings.Join(sent, "\n"))
	}
	if got := strings.Split(sent[0], ";"); !slices.Equal(got, want) {
		t.Fatalf("statements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := rows(t, "SELECT id, v FROM lockorder.a ORDER BY id"), "1,a1;2,a2;3,a3"; got != want {
		t.Errorf("table a: %s, want %s", got, want)
	}
	if got, want := rows(t, "SELECT id, v FROM lockorder.b ORDER BY id"), "10,b10;20,b20;30,b30"; got != want {
		t.Errorf("table b: %s, want %s", got, want)
	}
}

// TestMultiStatementError: when a statement in the middle of a batch's
// round trip fails, the error names its table, the statements after it
// (COMMIT included) do not run, and nothing of the batch stays applied.
func TestMultiStatementError(t *testing.T) {
	const schema = "multierr"
	createSchema(t, schema, `CREATE TABLE %[1]s.a (id INT PRIMARY KEY, v VARCHAR(10));
		CREATE TABLE %[1]s.b (id INT PRIMARY KEY, v VARCHAR(2));
		CREATE TABLE %[1]s.c (id INT PRIMARY KEY, v VARCHAR(10))`)
	ta := table(schema, "a", []string{"id", "v"}, []int{0})
	tb := table(schema, "b", []string{"id", "v"}, []int{0})
	tc := table(schema, "c", []string{"id", "v"}, []int{0})
	s := openSink(t, Config{})
	err := s.Apply(context.Background(), []*event.Txn{
		txn(ins(ta, int32(1), "fits")),
		txn(ins(tb, int32(1), "too long for two")),
		txn(ins(tc, int32(1), "fits")),
	})
	if err == nil {
		t.Fatal("Apply succeeded; want the data-too-long error of multierr.b")
	}
	if !strings.Contains(err.Error(), "multierr.b") || serverCode(err) != 1406 {
		t.Fatalf("error %q (code %d) does not name multierr.b with error 1406", err, serverCode(err))
	}
	for _, tbl := range []string{"a", "b", "c"} {
		if got := rows(t, "SELECT id FROM multierr."+tbl); got != "" {
			t.Errorf("multierr.%s holds %q after the failed batch, want nothing", tbl, got)
		}
	}
	// The connection is usable again: the same batch without the bad row.
	apply(t, s, txn(ins(ta, int32(1), "fits")), txn(ins(tc, int32(1), "fits")))
	if got := rows(t, "SELECT id, v FROM multierr.a"); got != "1,fits" {
		t.Errorf("multierr.a = %q, want 1,fits", got)
	}
}

// TestLargeStatement: a statement that alone reaches the statement size
// limit is sent on its own, after the statements queued before it and
// before those after it, in the batch's transaction: every row lands, and
// when a later statement fails, the large one is rolled back with the
// rest.
func TestLargeStatement(t *testing.T) {
	const schema = "largestmt"
	createSchema(t, schema, `CREATE TABLE %[1]s.a (id INT PRIMARY KEY, v VARCHAR(10));
		CREATE TABLE %[1]s.b (id INT PRIMARY KEY, v LONGBLOB);
		CREATE TABLE %[1]s.c (id INT PRIMARY KEY, v VARCHAR(2))`)
	ta := table(schema, "a", []string{"id", "v"}, []int{0})
	tb := table(schema, "b", []string{"id", "v"}, []int{0})
	tc := table(schema, "c", []string{"id", "v"}, []int{0})
	big := strings.Repeat("0123456789abcdef", (3*maxBytesPerStatement/2)/16) // 1.5 MiB, 3 MiB as hex
	s := openSink(t, Config{})

	apply(t, s, txn(ins(ta, int32(1), "a1")), txn(ins(tb, int32(1), []byte(big))), txn(ins(tc, int32(1), "c1")))
	if got := rows(t, "SELECT (SELECT GROUP_CONCAT(v) FROM largestmt.a), (SELECT MD5(v) = MD5('"+big+"') FROM largestmt.b WHERE id=1), (SELECT GROUP_CONCAT(v) FROM largestmt.c)"); got != "a1,1,c1" {
		t.Fatalf("rows %q, want a1,1,c1", got)
	}

	err := s.Apply(context.Background(), []*event.Txn{
		txn(ins(ta, int32(2), "a2")), txn(ins(tb, int32(2), []byte(big))), txn(ins(tc, int32(2), "too long")),
	})
	if err == nil || !strings.Contains(err.Error(), "largestmt.c") {
		t.Fatalf("Apply: %v; want the data-too-long error of largestmt.c", err)
	}
	if got := rows(t, "SELECT (SELECT COUNT(*) FROM largestmt.a), (SELECT COUNT(*) FROM largestmt.b), (SELECT COUNT(*) FROM largestmt.c)"); got != "1,1,1" {
		t.Fatalf("row counts %q after the failed batch, want 1,1,1 (nothing of it kept)", got)
	}
}
