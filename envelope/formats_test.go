package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// workloadTypes is test/workload's app.types as the MySQL source
// describes it (binlog_row_metadata=FULL: member names and metadata).
func workloadTypes() *event.Table {
	return &event.Table{Schema: "app", Name: "types", Columns: []event.Column{
		{Name: "id", Type: gomysql.MYSQL_TYPE_LONG},
		{Name: "ti", Type: gomysql.MYSQL_TYPE_TINY, Nullable: true},
		{Name: "tiu", Type: gomysql.MYSQL_TYPE_TINY, Unsigned: true, Nullable: true},
		{Name: "si", Type: gomysql.MYSQL_TYPE_SHORT, Nullable: true},
		{Name: "miu", Type: gomysql.MYSQL_TYPE_INT24, Unsigned: true, Nullable: true},
		{Name: "iu", Type: gomysql.MYSQL_TYPE_LONG, Unsigned: true, Nullable: true},
		{Name: "bi", Type: gomysql.MYSQL_TYPE_LONGLONG, Nullable: true},
		{Name: "biu", Type: gomysql.MYSQL_TYPE_LONGLONG, Unsigned: true, Nullable: true},
		{Name: "de", Type: gomysql.MYSQL_TYPE_NEWDECIMAL, Meta: 30<<8 | 10, Nullable: true},
		{Name: "f", Type: gomysql.MYSQL_TYPE_FLOAT, Meta: 4, Nullable: true},
		{Name: "d", Type: gomysql.MYSQL_TYPE_DOUBLE, Meta: 8, Nullable: true},
		{Name: "dt", Type: gomysql.MYSQL_TYPE_DATE, Nullable: true},
		{Name: "tm", Type: gomysql.MYSQL_TYPE_TIME2, Meta: 6, Nullable: true},
		{Name: "dtm", Type: gomysql.MYSQL_TYPE_DATETIME2, Meta: 6, Nullable: true},
		{Name: "dt0", Type: gomysql.MYSQL_TYPE_DATETIME2, Meta: 0, Nullable: true},
		{Name: "ts", Type: gomysql.MYSQL_TYPE_TIMESTAMP2, Meta: 6, Nullable: true},
		{Name: "y", Type: gomysql.MYSQL_TYPE_YEAR, Nullable: true},
		{Name: "c", Type: gomysql.MYSQL_TYPE_STRING, Nullable: true},
		{Name: "vc", Type: gomysql.MYSQL_TYPE_VARCHAR, Meta: 400, Nullable: true},
		{Name: "l1", Type: gomysql.MYSQL_TYPE_VARCHAR, Meta: 40, Nullable: true}, // latin1
		{Name: "bn", Type: gomysql.MYSQL_TYPE_STRING, Binary: true, Nullable: true},
		{Name: "bl", Type: gomysql.MYSQL_TYPE_BLOB, Meta: 2, Binary: true, Nullable: true},
		{Name: "tx", Type: gomysql.MYSQL_TYPE_BLOB, Meta: 2, Nullable: true},
		{Name: "j", Type: gomysql.MYSQL_TYPE_BLOB, Meta: 4, Nullable: true}, // MariaDB JSON: LONGTEXT
		{Name: "e", Type: gomysql.MYSQL_TYPE_ENUM, Members: []string{"a", "b", "c"}, Nullable: true},
		{Name: "st", Type: gomysql.MYSQL_TYPE_SET, Members: []string{"x", "y", "z"}, Nullable: true},
		{Name: "bt", Type: gomysql.MYSQL_TYPE_BIT, Meta: 1<<8 | 2, Nullable: true}, // BIT(10)
		{Name: "b1", Type: gomysql.MYSQL_TYPE_BIT, Meta: 1, Nullable: true},        // BIT(1)
	}, PrimaryKey: []int{0}}
}

// workloadRow is a row of it as go-mysql decodes it.
func workloadRow(id int32) []any {
	return []any{id, int8(-128), uint8(255), int16(-32768), uint32(16777215), uint32(math.MaxUint32),
		int64(math.MinInt64), uint64(math.MaxUint64), "-12345678901234567890.0123456789",
		float32(1.5), 0.1, "2024-02-29", "-838:59:59.000000", "2024-06-30 12:34:56.000001", "1970-01-02 00:00:01",
		"2024-06-30 12:34:56.123456", 2155, "ch", "quote \" ünï 😀", "caf\xe9", "\x00\xff\x80\x01", []byte("\x00bin\xff"),
		[]byte("text\n"), []byte(`{"a": [1, 2]}`), int64(2), int64(5), int64(0x201), int64(1)}
}

func formatTxn() *event.Txn {
	tbl := workloadTypes()
	before := workloadRow(1)
	after := append([]any(nil), before...)
	after[8] = "0.5000000000"
	after[25] = int64(0)
	after[1] = nil
	nulls := make([]any, len(tbl.Columns))
	nulls[0] = int32(3)
	return &event.Txn{Seq: 7, Pos: event.Position("0-1-42"), CommitTime: time.UnixMilli(1700000000000), Kind: event.KindDML,
		Changes: []event.Change{
			{Op: event.OpInsert, Namespace: "app.types", Table: tbl, After: before},
			{Op: event.OpUpdate, Namespace: "app.types", Table: tbl, Before: before, After: after},
			{Op: event.OpInsert, Namespace: "app.types", Table: tbl, After: nulls},
			{Op: event.OpDelete, Namespace: "app.types", Table: tbl, Before: after},
		}}
}

// TestFormatsGolden encodes one transaction touching every column type of
// the workload in each format and compares with testdata/<format>.golden
// (go test -update rewrites them); every key and value must be JSON.
func TestFormatsGolden(t *testing.T) {
	now := time.UnixMilli(1700000000500)
	cases := []FormatOptions{
		{Name: FormatDebezium},
		{Name: FormatDebezium, Schemas: true, NoTombstones: true, DecimalHandling: "string"},
		{Name: FormatCanal},
		{Name: FormatMaxwell},
	}
	for _, o := range cases {
		name := o.Name
		if o.Schemas {
			name += "-schemas"
		}
		t.Run(name, func(t *testing.T) {
			enc, err := NewEncoder(o, Meta{Channel: "sz-to-kafka", Site: "sz"})
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := enc.Encode(formatTxn(), now)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			for _, m := range msgs {
				for _, part := range [][]byte{m.Key, m.Value} {
					if part != nil && !json.Valid(part) {
						t.Fatalf("not JSON: %s", part)
					}
				}
				fmt.Fprintf(&got, "key: %s\nvalue: %s\n", m.Key, m.Value)
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s differs from %s:\n%s", name, path, got.Bytes())
			}
		})
	}
}

// TestFormatValues checks each format's documented representation of
// each type, value by value, computed here independently of the encoder.
func TestFormatValues(t *testing.T) {
	now := time.UnixMilli(1700000000500)
	decode := func(o FormatOptions) []map[string]any {
		enc, err := NewEncoder(o, Meta{Channel: "ch"})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := enc.Encode(formatTxn(), now)
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, m := range msgs {
			if m.Value == nil {
				out = append(out, nil)
				continue
			}
			d := json.NewDecoder(bytes.NewReader(m.Value))
			d.UseNumber()
			var v map[string]any
			if err := d.Decode(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	str := func(v any) string { return fmt.Sprint(v) }

	dbz := decode(FormatOptions{Name: FormatDebezium})
	if len(dbz) != 5 || dbz[4] != nil {
		t.Fatalf("debezium: %d messages, want 4 events and a tombstone after the delete", len(dbz))
	}
	after := dbz[0]["after"].(map[string]any)
	dtm := time.Date(2024, 6, 30, 12, 34, 56, 1000, time.UTC)
	for col, want := range map[string]string{
		"de":  "/nEW8Ak8jB8R8/sq6w==", // unscaled -123456789012345678900123456789, two's complement
		"dt":  fmt.Sprint(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC).Unix() / 86400),
		"tm":  fmt.Sprint(-int64(838*3600+59*60+59) * 1e6),
		"dtm": fmt.Sprint(dtm.UnixMicro()),
		"dt0": fmt.Sprint(time.Date(1970, 1, 2, 0, 0, 1, 0, time.UTC).UnixMilli()),
		"ts":  "2024-06-30T12:34:56.123456Z",
		"biu": "-1", // bigint.unsigned.handling.mode=long
		"e":   "b",
		"st":  "x,z",
		"bt":  "AQI=", // 0x201 little-endian
		"b1":  "true",
		"bl":  "AGJpbv8=",
		"l1":  "café",
		"j":   `{"a": [1, 2]}`,
	} {
		if got := str(after[col]); got != want {
			t.Errorf("debezium %s = %s, want %s", col, got, want)
		}
	}
	if op := dbz[1]["op"]; op != "u" || dbz[3]["op"] != "d" {
		t.Errorf("debezium ops %v %v", dbz[1]["op"], dbz[3]["op"])
	}
	tx := dbz[3]["transaction"].(map[string]any)
	if str(tx["id"]) != "0-1-42" || str(tx["total_order"]) != "4" || str(tx["total"]) != "4" {
		t.Errorf("debezium transaction block %v", tx)
	}

	canal := decode(FormatOptions{Name: FormatCanal})
	data := canal[0]["data"].([]any)[0].(map[string]any)
	for col, v := range data {
		if _, ok := v.(string); !ok {
			t.Errorf("canal %s = %v (%T), want a string", col, v, v)
		}
	}
	for col, want := range map[string]string{"de": "-12345678901234567890.0123456789", "biu": "18446744073709551615",
		"e": "b", "st": "x,z", "bt": "513", "dtm": "2024-06-30 12:34:56.000001", "bn": "\x00ÿ\u0080\x01"} {
		if got := str(data[col]); got != want {
			t.Errorf("canal %s = %q, want %q", col, got, want)
		}
	}
	old := canal[1]["old"].([]any)[0].(map[string]any)
	if len(old) != 3 || str(old["de"]) != "-12345678901234567890.0123456789" || str(old["st"]) != "x,z" || str(old["ti"]) != "-128" {
		t.Errorf("canal old = %v, want only the 3 changed columns with their previous values", old)
	}
	if canal[1]["type"] != "UPDATE" || str(canal[0]["pkNames"]) != "[id]" {
		t.Errorf("canal type %v pkNames %v", canal[1]["type"], canal[0]["pkNames"])
	}

	mx := decode(FormatOptions{Name: FormatMaxwell})
	mdata := mx[0]["data"].(map[string]any)
	for col, want := range map[string]string{"de": "-12345678901234567890.0123456789", "biu": "18446744073709551615",
		"st": "[x z]", "e": "b", "ts": "2024-06-30 12:34:56.123456", "bl": "AGJpbv8=", "bt": "513"} {
		if got := str(mdata[col]); got != want {
			t.Errorf("maxwell %s = %s, want %s", col, got, want)
		}
	}
	if _, isNum := mdata["de"].(json.Number); !isNum {
		t.Errorf("maxwell DECIMAL is %T, want a JSON number", mdata["de"])
	}
	for i, m := range mx {
		_, commit := m["commit"]
		if commit != (i == len(mx)-1) {
			t.Errorf("maxwell message %d: commit %v, want it on the last row only", i, commit)
		}
		if m["xid"] != mx[0]["xid"] {
			t.Errorf("maxwell xid differs within a transaction")
		}
	}
	if old := mx[1]["old"].(map[string]any); len(old) != 3 {
		t.Errorf("maxwell old = %v, want the 3 changed columns", old)
	}
}

// BenchmarkEncode is the CPU cost of each format on the all-types
// transaction (4 changes).
func BenchmarkEncode(b *testing.B) {
	for _, o := range []FormatOptions{{Name: FormatHamal}, {Name: FormatDebezium}, {Name: FormatDebezium, Schemas: true}, {Name: FormatCanal}, {Name: FormatMaxwell}} {
		name := o.Name
		if o.Schemas {
			name += "-schemas"
		}
		b.Run(name, func(b *testing.B) {
			enc, err := NewEncoder(o, Meta{Channel: "ch", Site: "sz"})
			if err != nil {
				b.Fatal(err)
			}
			txn := formatTxn()
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc.Encode(txn, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
