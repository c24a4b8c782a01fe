package event

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

var users = &Table{Schema: "app", Name: "users",
	Columns:    []Column{{Name: "id"}, {Name: "email"}, {Name: "nick", Nullable: true}},
	PrimaryKey: []int{0},
	UniqueKeys: []UniqueKey{{Name: "uk_email", Columns: []int{1}}, {Name: "uk_nick", Columns: []int{2}}}}

var orders = &Table{Schema: "app", Name: "orders",
	Columns: []Column{{Name: "region"}, {Name: "id"}}, PrimaryKey: []int{0, 1}}

var keyless = &Table{Schema: "app", Name: "log", Columns: []Column{{Name: "line", Nullable: true}}}

func dml(changes ...Change) *Txn { return &Txn{Kind: KindDML, Changes: changes} }

func ins(t *Table, row ...any) Change { return Change{Op: OpInsert, Table: t, After: row} }

func upd(t *Table, before, after []any) Change {
	return Change{Op: OpUpdate, Table: t, Before: before, After: after}
}

func shares(a, b *Txn) bool {
	for _, k := range a.ConflictKeys() {
		if slices.Contains(b.ConflictKeys(), k) {
			return true
		}
	}
	return false
}

func TestConflictKeys(t *testing.T) {
	cases := []struct {
		name     string
		a, b     *Txn
		conflict bool
	}{
		{"same primary key", dml(ins(users, int32(1), "a@x", nil)), dml(upd(users, []any{int32(1), "a@x", nil}, []any{int32(1), "b@x", nil})), true},
		{"different rows", dml(ins(users, int32(1), "a@x", nil)), dml(ins(users, int32(2), "b@x", nil)), false},
		{"unique value moves from row 1 to row 2",
			dml(upd(users, []any{int32(1), "a@x", nil}, []any{int32(1), "tmp", nil})),
			dml(upd(users, []any{int32(2), "b@x", nil}, []any{int32(2), "a@x", nil})), true},
		{"NULL unique values never conflict", dml(ins(users, int32(1), "a@x", nil)), dml(ins(users, int32(2), "b@x", nil)), false},
		{"equal non-NULL nicks conflict", dml(ins(users, int32(1), "a@x", "n")), dml(ins(users, int32(2), "b@x", "n")), true},
		{"case and trailing spaces fold", dml(ins(users, int32(1), "A@X ", nil)), dml(ins(users, int32(2), "a@x", nil)), true},
		{"[]byte and string text alike", dml(ins(users, int32(1), []byte("a@x"), nil)), dml(ins(users, int32(2), "a@x", nil)), true},
		{"PK change conflicts with old and new key",
			dml(upd(orders, []any{int16(1), int32(9)}, []any{int16(2), int32(9)})),
			dml(ins(orders, int16(1), int32(9))), true},
		{"composite key parts matter", dml(ins(orders, int16(1), int32(9))), dml(ins(orders, int16(9), int32(1))), false},
		{"same key, other table", dml(ins(orders, int16(1), int32(1))), dml(ins(&Table{Schema: "app", Name: "o2", Columns: orders.Columns, PrimaryKey: []int{0, 1}}, int16(1), int32(1))), false},
		{"signed -1 is not unsigned max", dml(ins(orders, int16(-1), int32(1))), dml(ins(orders, uint16(65535), int32(1))), false},
		{"redis keys", &Txn{Kind: KindDML, Changes: []Change{{Op: OpCommand, Namespace: "0", Keys: [][]byte{[]byte("k")}}}},
			&Txn{Kind: KindDML, Changes: []Change{{Op: OpCommand, Namespace: "0", Keys: [][]byte{[]byte("k")}}}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := shares(tc.a, tc.b); got != tc.conflict {
				t.Errorf("conflict = %v, want %v (keys %x / %x)", got, tc.conflict, tc.a.ConflictKeys(), tc.b.ConflictKeys())
			}
			if tc.a.IsBarrier() || tc.b.IsBarrier() {
				t.Error("keyed DML must not be a barrier")
			}
		})
	}
}

func TestBarriers(t *testing.T) {
	cases := []struct {
		name    string
		txn     *Txn
		barrier bool
	}{
		{"ddl", &Txn{Kind: KindDDL, DDL: &DDL{Statement: "ALTER TABLE t ADD c INT"}}, true},
		{"explicit barrier", &Txn{Kind: KindBarrier}, true},
		{"keyless table", dml(ins(keyless, "x")), true},
		{"keyless among keyed", dml(ins(users, int32(1), "a@x", nil), ins(keyless, "x")), true},
		{"command without keys", &Txn{Kind: KindDML, Changes: []Change{{Op: OpCommand, Namespace: "0"}}}, true},
		{"heartbeat", &Txn{Kind: KindHeartbeat}, false},
		{"empty dml", dml(), false},
		{"NOT NULL unique key as row key", dml(ins(&Table{Schema: "a", Name: "b", Columns: []Column{{Name: "u"}}, UniqueKeys: []UniqueKey{{Name: "u", Columns: []int{0}}}}, "v")), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.txn.IsBarrier(); got != tc.barrier {
				t.Errorf("IsBarrier = %v, want %v", got, tc.barrier)
			}
			if tc.barrier && tc.txn.ConflictKeys() != nil {
				t.Errorf("barrier has keys %x", tc.txn.ConflictKeys())
			}
		})
	}
}

func TestSizeBytesGrowsWithData(t *testing.T) {
	small := dml(ins(users, int32(1), "a@x", nil))
	big := dml(ins(users, int32(1), string(make([]byte, 10000)), nil))
	if small.SizeBytes() <= 0 || big.SizeBytes() < small.SizeBytes()+9990 {
		t.Fatalf("sizes %d, %d", small.SizeBytes(), big.SizeBytes())
	}
}

// TestSizeBytesCoversHeap: the DAG's byte window is only a bound on
// memory if SizeBytes tracks the heap a Txn really takes. Txns shaped as
// the MySQL source builds them (single-row ones, and a huge
// transaction's chunk of appended changes), with their conflict keys
// computed, are compared with the heap they add.
func TestSizeBytesCoversHeap(t *testing.T) {
	cases := []struct {
		name string
		n    int
		make func(i int) *Txn
	}{
		{"one-row insert", 2000, func(i int) *Txn {
			return &Txn{Kind: KindDML, Pos: Position(fmt.Sprintf("0-1-%d", i)), Changes: []Change{
				ins(users, int32(i), fmt.Sprintf("user%d@example.com", i), strings.Repeat("n", 60))}}
		}},
		{"update with both images", 2000, func(i int) *Txn {
			before := []any{int32(i), fmt.Sprintf("u%d@x", i), nil}
			after := []any{int32(i), fmt.Sprintf("u%d@y", i), []byte(strings.Repeat("p", 120))}
			return &Txn{Kind: KindDML, Pos: Position(fmt.Sprintf("0-1-%d", i)), Changes: []Change{
				{Op: OpUpdate, Table: users, Before: before, After: after}}}
		}},
		{"chunk of 1000 appended rows", 50, func(i int) *Txn {
			txn := &Txn{Kind: KindDML, Pos: Position(fmt.Sprintf("0-1-%d", i))}
			for r := range 1000 {
				txn.Changes = append(txn.Changes, ins(users, int32(i*1000+r), fmt.Sprintf("c%d@x", r), int64(r)))
			}
			return txn
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := c.n
			txns := make([]*Txn, n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range txns {
				txns[i] = c.make(i)
				txns[i].ConflictKeys()
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			estimate := 0
			for _, txn := range txns {
				estimate += txn.SizeBytes()
			}
			runtime.KeepAlive(txns)
			heap := int(after.HeapAlloc) - int(before.HeapAlloc) - n*8 // less the slice of pointers
			ratio := float64(estimate) / float64(heap)
			t.Logf("estimate %d bytes, heap %d bytes: %.2f", estimate, heap, ratio)
			if ratio < 0.85 || ratio > 1.5 {
				t.Fatalf("SizeBytes sums to %.2f of the heap the Txns take, want 0.85..1.5", ratio)
			}
		})
	}
}

func TestEnumStrings(t *testing.T) {
	if OpInsert.String() != "insert" || Op(0).String() != "Op(0)" || KindDDL.String() != "ddl" || Kind(0).String() != "Kind(0)" {
		t.Fatal("enum strings")
	}
}
