package mysql

import (
	"testing"
	"time"
)

func TestUnsyncedOwnersCleared(t *testing.T) {
	mustExec(t, "DROP DATABASE IF EXISTS us", "CREATE DATABASE us",
		"CREATE TABLE us.orders (id INT PRIMARY KEY, customer INT, note VARCHAR(10))")
	s := openSink(t, Config{Workers: 1, Site: "b", Unsynced: map[string]string{"us.orders": "customer"}})
	now := time.Now().UTC()
	past := now.Add(-time.Minute).Format("2006-01-02 15:04:05.000000")
	future := now.Add(time.Hour).Format("2006-01-02 15:04:05.000000")
	// The times are UTC text: the session reads them in UTC whatever the
	// server's time_zone (the matrix runs +08:00).
	mustExec(t, "SET time_zone='+00:00'", "DELETE FROM hamal.unsynced",
		"INSERT INTO hamal.unsynced VALUES ('42','a','"+past+"'), ('43','a','"+past+"'), ('44','a','"+past+"'), ('42','c','"+past+"'), ('45','a','"+future+"')")
	tbl := table("us", "orders", []string{"id", "customer", "note"}, []int{0})

	// Owner 42 inserts, 43 moves an order to owner 46, 45 writes but its
	// entry is newer than the write (recorded for a later write).
	x := txn(ins(tbl, int32(1), int32(42), "a"),
		upd(tbl, row(int32(2), int32(43), "b"), row(int32(2), int32(46), "b")),
		ins(tbl, int32(3), int32(45), "c"))
	x.Origin, x.Path, x.CommitTime = "a", []string{"a", "b"}, now
	apply(t, s, x)
	if got := rows(t, "SELECT owner, origin FROM hamal.unsynced ORDER BY owner, origin"); got != "42,c;44,a;45,a" {
		t.Errorf("unsynced after apply = %q, want owners 42 and 43 of origin a cleared, the rest kept", got)
	}
}
