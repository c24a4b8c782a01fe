package mysql

import (
	"slices"
	"strings"
	"testing"
)

// TestStatementOrder: a flush writes tables in name order and rows in key
// order, whatever order the batch touched them in, so concurrent workers
// take row locks in one order (fewer deadlocks). The statements are read
// back from the server's general log.
func TestStatementOrder(t *testing.T) {
	const schema = "lockorder"
	createSchema(t, schema, `CREATE TABLE %[1]s.b (id INT PRIMARY KEY, v VARCHAR(10));
		CREATE TABLE %[1]s.a (id INT PRIMARY KEY, v VARCHAR(10))`)
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

	var got []string
	for _, r := range server.MustQuery(t, "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE command_type='Query' AND argument LIKE '%lockorder%' ORDER BY event_time") {
		if q := r[0]; strings.HasPrefix(q, "DELETE") || strings.HasPrefix(q, "REPLACE") {
			got = append(got, q)
		}
	}
	want := []string{
		"DELETE FROM `lockorder`.`a` WHERE `id` IN (5,6,7)",
		"REPLACE INTO `lockorder`.`a` (`id`,`v`) VALUES (1,'a1'),(2,'a2'),(3,'a3')",
		"REPLACE INTO `lockorder`.`b` (`id`,`v`) VALUES (10,'b10'),(20,'b20'),(30,'b30')",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("statements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := rows(t, "SELECT id, v FROM lockorder.a ORDER BY id"), "1,a1;2,a2;3,a3"; got != want {
		t.Errorf("table a: %s, want %s", got, want)
	}
	if got, want := rows(t, "SELECT id, v FROM lockorder.b ORDER BY id"), "10,b10;20,b20;30,b30"; got != want {
		t.Errorf("table b: %s, want %s", got, want)
	}
}
