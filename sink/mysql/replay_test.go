package mysql

import (
	"fmt"
	"testing"

	"github.com/hamal-replication/hamal/event"
)

// fidelityTable has a column of every kind the conflict check compares,
// and fidelityRow gives row id in version v as go-mysql decodes it from
// the binlog (source/mysql TestValueContract): ENUM and SET as their index
// and bitmask, BIT as a number, BINARY(4) without its trailing pad bytes,
// FLOAT as float32, DECIMAL and temporal values as text (TIMESTAMP in
// UTC), YEAR as int, TEXT and JSON as bytes, latin1 text as its bytes.
const fidelityTable = `CREATE TABLE %[1]s.t (
	id INT PRIMARY KEY, en ENUM('new','paid','shipped'), st SET('x','y','z'), bt BIT(10),
	bn BINARY(4), vb VARBINARY(8), f FLOAT, d DOUBLE, de DECIMAL(12,3), ts TIMESTAMP(6) NULL,
	tm TIME(3), dtm DATETIME(6), y YEAR, tx TEXT CHARACTER SET utf8mb4, js JSON,
	l VARCHAR(10) CHARACTER SET latin1, ch CHAR(5) CHARACTER SET utf8mb4, u VARCHAR(20) CHARACTER SET utf8mb4)`

var fidelityCols = []string{"id", "en?", "st?", "bt?", "bn?", "vb?", "f?", "d?", "de?", "ts?", "tm?", "dtm?", "y?", "tx?", "js?", "l?", "ch?", "u?"}

func fidelityRow(id int32, v int) []any {
	return row(id, int64(1+v%3), int64(1+v%7), int64(v*37%1024),
		string([]byte{0xff, byte(v), 0}[:1+v%2]), []byte{0x00, byte(v), 0xfe},
		float32(0.1)*float32(v+1), 1.0/float64(v+3), fmt.Sprintf("%d.%03d", v, v*7%1000), fmt.Sprintf("2024-01-02 03:04:%02d.%06d", v%60, v*123457%1000000),
		fmt.Sprintf("-12:34:%02d.5%02d", v%60, v%100), fmt.Sprintf("2024-02-29 23:59:%02d.000001", v%60), 1901+v, []byte(fmt.Sprintf("文本 😀 %d", v)), []byte(fmt.Sprintf(`{"v": %d, "s": "中"}`, v)),
		string([]byte{'c', 0xe9, byte('0' + v%10)}), fmt.Sprintf("c%d", v%10), fmt.Sprintf("中文😀%d", v))
}

// TestReplayIsNoConflict is the conformance check of conflict detection
// on a single writer: changes of site a only, applied by a sink at site b.
// For every crash point c (the target holds the first c Txns) and every
// checkpoint k <= c (the replay starts there), the suffix from k is
// applied again, one Txn per unit and all in one batch. The target must
// end equal to the changes applied once, and hamal.conflicts stay empty:
// a row written by one site is never a conflict, whatever its column
// types, and a replayed change that the target is already past is not
// one either (the replay fence).
func TestReplayIsNoConflict(t *testing.T) {
	const schema = "rp"
	createSchema(t, schema, fidelityTable)
	tbl := table(schema, "t", fidelityCols, []int{0})
	var txns []*event.Txn
	add := func(c ...event.Change) {
		x := txn(c...)
		x.Origin, x.Path = "a", []string{"a", "b"}
		txns = append(txns, x)
	}
	add(ins(tbl, fidelityRow(1, 0)...), ins(tbl, fidelityRow(2, 0)...))
	add(upd(tbl, fidelityRow(1, 0), fidelityRow(1, 1)))
	add(ins(tbl, fidelityRow(3, 0)...), upd(tbl, fidelityRow(2, 0), fidelityRow(2, 1)))
	add(upd(tbl, fidelityRow(1, 1), fidelityRow(1, 2)))
	add(del(tbl, fidelityRow(3, 0)...))
	add(upd(tbl, fidelityRow(2, 1), fidelityRow(2, 2)), upd(tbl, fidelityRow(1, 2), fidelityRow(1, 3)))
	add(ins(tbl, fidelityRow(3, 5)...))
	add(del(tbl, fidelityRow(2, 2)...), upd(tbl, fidelityRow(3, 5), fidelityRow(3, 6)))

	s := openSink(t, Config{Workers: 1, Site: "b", Channel: "replay"})
	reset := func() {
		mustExec(t, "DELETE FROM rp.t", "DELETE FROM hamal.applied WHERE channel='replay'", "DELETE FROM hamal.conflicts WHERE channel='replay'")
	}
	reset()
	for _, x := range txns {
		apply(t, s, x)
	}
	want, _ := checksum(t, "rp.t", "id")
	if n := rows(t, "SELECT COUNT(*) FROM hamal.conflicts WHERE channel='replay'"); n != "0" {
		t.Fatalf("the changes applied once recorded %s conflicts: %s", n, rows(t, "SELECT row_key, change_kind, incoming_image, existing_image FROM hamal.conflicts"))
	}
	for c := 0; c <= len(txns); c++ {
		for k := 0; k <= c; k++ {
			for _, whole := range []bool{false, true} {
				reset()
				for _, x := range txns[:c] {
					apply(t, s, x)
				}
				if whole {
					apply(t, s, txns[k:]...)
				} else {
					for _, x := range txns[k:] {
						apply(t, s, x)
					}
				}
				if got, _ := checksum(t, "rp.t", "id"); got != want {
					t.Errorf("crash after %d, replay from %d (one batch %v): target %s, want %s", c, k, whole, got, want)
				}
				if n := rows(t, "SELECT COUNT(*) FROM hamal.conflicts WHERE channel='replay'"); n != "0" {
					t.Fatalf("crash after %d, replay from %d (one batch %v): %s conflicts recorded for a single writer: %s", c, k, whole, n,
						rows(t, "SELECT row_key, change_kind, incoming_image, existing_image FROM hamal.conflicts WHERE channel='replay'"))
				}
			}
		}
	}
	if s.Replays() == 0 {
		t.Error("no replay was recognised; the target was ahead in most cases")
	}
}

// TestReplayKeepsKeptResolution: a conflict resolved target-wins is not
// undone when its change is replayed after a crash, and the replay records
// no second conflict.
func TestReplayKeepsKeptResolution(t *testing.T) {
	mustExec(t, "DROP DATABASE IF EXISTS rk", "CREATE DATABASE rk", "CREATE TABLE rk.t (id INT PRIMARY KEY, v INT)", "INSERT INTO rk.t VALUES (1, 50)")
	tbl := table("rk", "t", []string{"id", "v?"}, []int{0})
	s := openSink(t, Config{Workers: 1, Site: "b", Channel: "kept", Conflicts: ConflictRules{Default: ConflictRule{Policy: TargetWins}}})
	x := txn(upd(tbl, row(int32(1), int32(1)), row(int32(1), int32(2))))
	x.Origin, x.Path = "a", []string{"a", "b"}
	apply(t, s, x)
	apply(t, s, x) // the replay after a crash
	if got := rows(t, "SELECT v FROM rk.t"); got != "50" {
		t.Errorf("row v=%s after the replay, want the kept target value 50", got)
	}
	if got := rows(t, "SELECT COUNT(*), MIN(resolution) FROM hamal.conflicts WHERE channel='kept'"); got != "1,kept" {
		t.Errorf("conflicts %q, want the one kept resolution", got)
	}
}
