package relay

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// sampleTable is shaped like what the MySQL source emits.
func sampleTable() *event.Table {
	return &event.Table{Schema: "app", Name: "t", Columns: []event.Column{
		{Name: "id", Type: 8, Unsigned: true}, {Name: "c", Type: 15, Nullable: true, Meta: 480}, {Name: "e", Type: 254, Nullable: true, Meta: 0xf701, Members: []string{"new", "paid", "已发货"}}, {Name: "s", Type: 254, Members: []string{}}, {Name: "b", Type: 252, Binary: true, Nullable: true},
	}, PrimaryKey: []int{0}, UniqueKeys: []event.UniqueKey{{Name: "uk_c", Columns: []int{1}}}}
}

// everyValue holds every Go type a row image carries (see FACTS.md).
func everyValue() []any {
	return []any{nil, int8(-8), int16(-16000), int32(math.MinInt32), int64(math.MinInt64), int(-7),
		uint8(255), uint16(65535), uint32(math.MaxUint32), uint64(math.MaxUint64), uint(9),
		float32(1.5), float32(math.Inf(-1)), float64(-2.25), math.MaxFloat64, math.SmallestNonzeroFloat64,
		"", "text", string([]byte{0, 0xff, 0xfe, 'x'}), "-838:59:59.999", "2024-01-02 03:04:05.123456",
		[]byte{}, []byte(nil), []byte{0, 1, 2, 0xff}, true, false,
		time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)}
}

func sampleTxns() []*event.Txn {
	tbl := sampleTable()
	other := &event.Table{Schema: "app", Name: "keyless", Columns: []event.Column{{Name: "x", Type: 3}}, UniqueUnknown: true}
	return []*event.Txn{
		{Seq: 7, Pos: event.Position("0-1-42"), Origin: "sz", Path: []string{"sz", "sh"},
			CommitTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), Kind: event.KindDML,
			Changes: []event.Change{
				{Op: event.OpInsert, Namespace: "app.t", Table: tbl, After: everyValue()},
				{Op: event.OpUpdate, Namespace: "app.t", Table: tbl, Before: everyValue(), After: []any{}},
				{Op: event.OpDelete, Namespace: "app.keyless", Table: other, Before: []any{int32(1)}},
			}},
		{Pos: event.Position("0-1-43"), Kind: event.KindDDL, DDL: &event.DDL{Schema: "app", Statement: "ALTER TABLE t ADD d INT"},
			CommitTime: time.Unix(1700000000, 0)},
		{Pos: event.Position("0-1-44"), Kind: event.KindDDL, DDL: &event.DDL{Schema: "app", Statement: `DROP TABLE "app"."t_gone"`, SQLMode: "ANSI_QUOTES,NO_BACKSLASH_ESCAPES"}},
		{Pos: event.Position{}, Kind: event.KindDML, Changes: []event.Change{
			{Op: event.OpCommand, Namespace: "0", Args: [][]byte{[]byte("SET"), []byte("k"), {}, nil}, Keys: [][]byte{[]byte("k")}},
		}},
		{Pos: event.Position("hb"), Kind: event.KindHeartbeat, Heartbeat: time.Date(2025, 1, 1, 0, 0, 0, 1, time.UTC), Changes: []event.Change{}},
		{Kind: event.KindBarrier, Path: []string{}},
		{Pos: event.Position("before-txn"), Kind: event.KindDML, Partial: true, Origin: "sz", Changes: []event.Change{{Op: event.OpCommand, Namespace: "0"}}},
		{},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	enc := newEncoder()
	dec := newDecoder(&tableIntern{})
	for i, want := range sampleTxns() {
		payload, err := enc.appendTxn(nil, uint64(100+i), want)
		if err != nil {
			t.Fatalf("txn %d: encode: %v", i, err)
		}
		enc.commit()
		rseq, got, err := dec.decodeTxn(payload)
		if err != nil {
			t.Fatalf("txn %d: decode: %v", i, err)
		}
		if rseq != uint64(100+i) {
			t.Errorf("txn %d: relay seq %d, want %d", i, rseq, 100+i)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("txn %d: round trip differs:\n got %#v\nwant %#v", i, got, want)
		}
		for ci := range want.Changes {
			for _, img := range [][2][]any{{want.Changes[ci].Before, got.Changes[ci].Before}, {want.Changes[ci].After, got.Changes[ci].After}} {
				for vi := range img[0] {
					if reflect.TypeOf(img[0][vi]) != reflect.TypeOf(img[1][vi]) {
						t.Errorf("txn %d change %d value %d: type %T, want %T", i, ci, vi, img[1][vi], img[0][vi])
					}
				}
			}
		}
		// Conflict keys (what the DAG orders by) survive too.
		if !reflect.DeepEqual(got.ConflictKeys(), want.ConflictKeys()) || got.IsBarrier() != want.IsBarrier() {
			t.Errorf("txn %d: conflict keys differ", i)
		}
	}
}

func TestCodecSharesTables(t *testing.T) {
	tbl := sampleTable()
	txn := &event.Txn{Kind: event.KindDML, Changes: []event.Change{
		{Op: event.OpInsert, Table: tbl, After: []any{uint64(1), "a", nil}},
		{Op: event.OpInsert, Table: tbl, After: []any{uint64(2), "b", nil}},
	}}
	enc := newEncoder()
	first, _ := enc.appendTxn(nil, 1, txn)
	enc.commit()
	second, _ := enc.appendTxn(nil, 2, txn)
	enc.commit()
	if len(second) >= len(first) {
		t.Errorf("the second record (%d bytes) should refer to the table the first (%d bytes) defined", len(second), len(first))
	}
	intern := &tableIntern{}
	dec := newDecoder(intern)
	_, a, err := dec.decodeTxn(first)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := dec.decodeTxn(second)
	if err != nil {
		t.Fatal(err)
	}
	if a.Changes[0].Table != a.Changes[1].Table || a.Changes[0].Table != b.Changes[0].Table {
		t.Error("changes of one table should share one *Table")
	}
	// A new segment (new decoder) still hands out the same pointer.
	_, c, err := newDecoder(intern).decodeTxn(first)
	if err != nil {
		t.Fatal(err)
	}
	if c.Changes[0].Table != a.Changes[0].Table {
		t.Error("segments should share interned tables")
	}
	// A record that is rolled back does not leave its table defined.
	enc2 := newEncoder()
	if _, err := enc2.appendTxn(nil, 1, txn); err != nil {
		t.Fatal(err)
	}
	enc2.rollback()
	again, _ := enc2.appendTxn(nil, 1, txn)
	if _, _, err := newDecoder(nil).decodeTxn(again); err != nil {
		t.Errorf("after rollback the table must be defined again: %v", err)
	}
}

func TestCodecRefusesUnknownType(t *testing.T) {
	txn := &event.Txn{Kind: event.KindDML, Changes: []event.Change{{Op: event.OpInsert, Namespace: "app.t", After: []any{struct{}{}}}}}
	_, err := newEncoder().appendTxn(nil, 1, txn)
	var uv *UnsupportedValueError
	if !errorsAs(err, &uv) || uv.Namespace != "app.t" {
		t.Fatalf("err = %v, want an UnsupportedValueError naming app.t", err)
	}
}

func TestDecodeRejectsTruncation(t *testing.T) {
	for i, txn := range sampleTxns() {
		payload, err := newEncoder().appendTxn(nil, 1, txn)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(payload); n++ {
			if _, _, err := newDecoder(nil).decodeTxn(payload[:n]); err == nil {
				t.Fatalf("txn %d: a payload cut at %d of %d bytes decoded without error", i, n, len(payload))
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, txn := range sampleTxns() {
		payload, err := newEncoder().appendTxn(nil, 1, txn)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload)
	}
	f.Add([]byte{})
	f.Add([]byte{1, txnChanges, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDecoder(&tableIntern{})
		_, txn, err := d.decodeTxn(data)
		if err == nil {
			// Whatever decodes must encode again, and be safe to use: the
			// key functions index images by the table's key columns.
			if _, err := newEncoder().appendTxn(nil, 1, txn); err != nil {
				t.Fatalf("decoded a txn that does not encode: %v", err)
			}
			_ = txn.ConflictKeys()
			for _, c := range txn.Changes {
				if c.Table != nil {
					if cols, ok := c.Table.RowKey(); ok {
						for _, img := range [][]any{c.Before, c.After} {
							for _, i := range cols {
								if len(img) > 0 {
									_ = img[i]
								}
							}
						}
					}
				}
			}
		}
		_, _ = peekHead(data)
	})
}

// TestDecodeRejectsBadIndices: a table whose primary or unique key names
// a column it does not have (a negative index, one past the end), or a
// row image without the key columns, is corrupt: an error, never
// a panic downstream (RowKey, the sinks' key lookups).
func TestDecodeRejectsBadIndices(t *testing.T) {
	cols := []event.Column{{Name: "id"}, {Name: "v"}}
	for _, tc := range []struct {
		name  string
		table event.Table
		after []any
	}{
		{"negative unique key index", event.Table{Schema: "a", Name: "t", Columns: cols, UniqueKeys: []event.UniqueKey{{Name: "u", Columns: []int{-1}}}}, []any{int64(1), "x"}},
		{"unique key past the columns", event.Table{Schema: "a", Name: "t", Columns: cols, UniqueKeys: []event.UniqueKey{{Name: "u", Columns: []int{2}}}}, []any{int64(1), "x"}},
		{"negative primary key index", event.Table{Schema: "a", Name: "t", Columns: cols, PrimaryKey: []int{-3}}, []any{int64(1), "x"}},
		{"image without the key column", event.Table{Schema: "a", Name: "t", Columns: cols, PrimaryKey: []int{1}}, []any{int64(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			txn := &event.Txn{Kind: event.KindDML, Pos: event.Position("p"), Changes: []event.Change{{Op: event.OpInsert, Table: &tc.table, After: tc.after}}}
			payload, err := newEncoder().appendTxn(nil, 1, txn)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := newDecoder(nil).decodeTxn(payload); !errors.Is(err, errCorrupt) {
				t.Fatalf("decoded without the corruption error: %v", err)
			}
		})
	}
}

// TestReadsFormatOneSegments: testdata/format1.seg was written by the
// relay of format 1 (before column metadata and table flags were
// recorded); this version reads it as it is, so upgrading hamal keeps a
// relay's unapplied records.
func TestReadsFormatOneSegments(t *testing.T) {
	want := &event.Txn{Pos: event.Position("0-1-9"), Kind: event.KindDML, Changes: []event.Change{{
		Op: event.OpInsert, Namespace: "app.t", After: []any{int32(1), "x"},
		Table: &event.Table{Schema: "app", Name: "t", Columns: []event.Column{{Name: "id", Type: 3}, {Name: "c", Type: 15, Nullable: true}},
			PrimaryKey: []int{0}, UniqueKeys: []event.UniqueKey{{Name: "uk_c", Columns: []int{1}}}},
	}}}
	path := filepath.Join(t.TempDir(), segName(1))
	b, err := os.ReadFile("testdata/format1.seg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	rr, err := openRecords(path)
	if err != nil {
		t.Fatalf("a format 1 segment is refused: %v", err)
	}
	defer rr.close()
	if !rr.v1 {
		t.Fatal("format 1 segment not recognised as such")
	}
	payload, err := rr.next(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	dec := newDecoder(&tableIntern{})
	dec.v1 = rr.v1
	rseq, got, err := dec.decodeTxn(payload)
	if err != nil || rseq != 1 {
		t.Fatalf("decode: seq %d, %v", rseq, err)
	}
	if !reflect.DeepEqual(got.Changes[0].Table, want.Changes[0].Table) || !reflect.DeepEqual(got.Changes[0].After, want.Changes[0].After) || string(got.Pos) != string(want.Pos) {
		t.Errorf("got %+v, want %+v", got.Changes[0], want.Changes[0])
	}
	// Read as format 2 it is corrupt: the version decides.
	if _, _, err := newDecoder(&tableIntern{}).decodeTxn(payload); err == nil {
		t.Error("a format 1 record decoded as format 2 without an error")
	}
}
