package envelope

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

var update = flag.Bool("update", false, "rewrite golden files")

// typesTable has one column per value shape the MySQL source produces.
func typesTable() *event.Table {
	return &event.Table{Schema: "app", Name: "types", Columns: []event.Column{
		{Name: "id", Type: gomysql.MYSQL_TYPE_LONG},
		{Name: "ti", Type: gomysql.MYSQL_TYPE_TINY, Nullable: true},
		{Name: "biu", Type: gomysql.MYSQL_TYPE_LONGLONG, Unsigned: true, Nullable: true},
		{Name: "de", Type: gomysql.MYSQL_TYPE_NEWDECIMAL, Nullable: true},
		{Name: "f", Type: gomysql.MYSQL_TYPE_FLOAT, Nullable: true},
		{Name: "d", Type: gomysql.MYSQL_TYPE_DOUBLE, Nullable: true},
		{Name: "ts", Type: gomysql.MYSQL_TYPE_TIMESTAMP2, Nullable: true},
		{Name: "y", Type: gomysql.MYSQL_TYPE_YEAR, Nullable: true},
		{Name: "vc", Type: gomysql.MYSQL_TYPE_VARCHAR, Nullable: true},
		{Name: "vb", Type: gomysql.MYSQL_TYPE_VARCHAR, Binary: true, Nullable: true},
		{Name: "l1", Type: gomysql.MYSQL_TYPE_VARCHAR, Nullable: true}, // latin1 text
		{Name: "j", Type: gomysql.MYSQL_TYPE_BLOB, Nullable: true},
		{Name: "e", Type: gomysql.MYSQL_TYPE_ENUM, Nullable: true},
		{Name: "st", Type: gomysql.MYSQL_TYPE_SET, Nullable: true},
		{Name: "bt", Type: gomysql.MYSQL_TYPE_BIT, Nullable: true},
		{Name: "u", Type: gomysql.MYSQL_TYPE_VARCHAR, Nullable: true},
	}, PrimaryKey: []int{0}, UniqueKeys: []event.UniqueKey{{Name: "uk_u", Columns: []int{15}}}}
}

func typesRow(id int32) []any {
	return []any{id, int8(-128), uint64(math.MaxUint64), "-12345678901234567890.0123456789",
		float32(math.MaxFloat32), 0.1, "2024-02-29 23:59:59.123456", 2155,
		"quote \" back \\ nl \n ünï 😀", "\x00\xff\x80bin", "caf\xe9", []byte(`{"a": [1, 2]}`),
		int64(3), int64(5), int64(-1) /* BIT(64) all ones */, "u1"}
}

func TestEnvelopeGoldenAndRoundTrip(t *testing.T) {
	tbl := typesTable()
	before := typesRow(1)
	after := append([]any(nil), before...)
	after[3] = "0.5"
	after[8] = nil
	moved := append([]any(nil), after...)
	moved[0] = int32(2)
	txn := &event.Txn{Seq: 7, Pos: event.Position("0-1-42"), Origin: "", CommitTime: time.UnixMilli(1700000000000), Kind: event.KindDML,
		Changes: []event.Change{
			{Op: event.OpInsert, Namespace: "app.types", Table: tbl, After: before},
			{Op: event.OpUpdate, Namespace: "app.types", Table: tbl, Before: before, After: after},
			{Op: event.OpUpdate, Namespace: "app.types", Table: tbl, Before: after, After: moved}, // PK change
			{Op: event.OpDelete, Namespace: "app.types", Table: tbl, Before: moved},
		}}
	msgs, err := Encode(txn, Meta{Channel: "sz-to-kafka", Site: "sz"}, time.UnixMilli(1700000000500))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 5 {
		t.Fatalf("got %d messages, want 5 (the PK change splits into d + c)", len(msgs))
	}
	var golden bytes.Buffer
	for _, m := range msgs {
		golden.WriteString("key: ")
		golden.Write(m.Key)
		golden.WriteString("\nvalue: ")
		golden.Write(m.Value)
		golden.WriteString("\n\n")
	}
	path := filepath.Join("testdata", "envelope.golden")
	if *update {
		if err := os.WriteFile(path, golden.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(golden.Bytes(), want) {
		t.Errorf("envelopes differ from %s (run with -update after checking):\n%s", path, golden.Bytes())
	}

	// Partition keys: a table with a secondary unique key keeps all its
	// changes in one partition.
	for _, m := range msgs {
		if string(m.PartitionKey) != "app.types" {
			t.Errorf("partition key %q, want the namespace for a table with a unique key", m.PartitionKey)
		}
	}

	type expect struct {
		op            event.Op
		before, after []any
	}
	wants := []expect{
		{event.OpInsert, nil, before},
		{event.OpUpdate, before, after},
		{event.OpDelete, after, nil},
		{event.OpInsert, nil, moved},
		{event.OpDelete, moved, nil},
	}
	d := NewDecoder()
	var firstTable *event.Table
	for i, m := range msgs {
		c, src, err := d.Decode(m.Value)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if src.Index != i || src.Position != "0-1-42" || src.Channel != "sz-to-kafka" || src.TxnOrigin() != "sz" || src.Seq != 7 {
			t.Errorf("message %d: source %+v", i, src)
		}
		if c.Op != wants[i].op || c.Namespace != "app.types" {
			t.Errorf("message %d: op %s ns %s, want %s app.types", i, c.Op, c.Namespace, wants[i].op)
		}
		if !reflect.DeepEqual(c.Table, tbl) {
			t.Errorf("message %d: table %+v, want %+v", i, c.Table, tbl)
		}
		if firstTable == nil {
			firstTable = c.Table
		} else if c.Table != firstTable {
			t.Errorf("message %d: decoder did not reuse the table description", i)
		}
		for _, pair := range [][2][]any{{c.Before, wants[i].before}, {c.After, wants[i].after}} {
			got, exp := pair[0], pair[1]
			if (got == nil) != (exp == nil) {
				t.Fatalf("message %d: image %v, want %v", i, got, exp)
			}
			for ci := range exp {
				if !sameValue(got[ci], exp[ci]) {
					t.Errorf("message %d column %s: got %#v, want %#v", i, tbl.Columns[ci].Name, got[ci], exp[ci])
				}
			}
		}
	}
}

// sameValue compares a decoded value with the source's: integers by value,
// text and bytes by bytes, floats exactly and of the same width.
func sameValue(got, want any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case string:
		return bytesOf(got) != nil && string(bytesOf(got)) == w
	case []byte:
		return bytesOf(got) != nil && bytes.Equal(bytesOf(got), w)
	case float32:
		g, ok := got.(float32)
		return ok && g == w
	case float64:
		g, ok := got.(float64)
		return ok && g == w
	}
	wi, wu := reflect.ValueOf(want), reflect.ValueOf(got)
	switch {
	case wi.CanInt() && wu.CanInt():
		return wi.Int() == wu.Int()
	case wi.CanUint() && wu.CanUint():
		return wi.Uint() == wu.Uint()
	case wi.CanInt() && wu.CanUint():
		return wi.Int() >= 0 && uint64(wi.Int()) == wu.Uint()
	case wi.CanUint() && wu.CanInt():
		return wu.Int() >= 0 && uint64(wu.Int()) == wi.Uint()
	}
	return false
}

func bytesOf(v any) []byte {
	switch x := v.(type) {
	case string:
		return []byte(x)
	case []byte:
		return x
	}
	return nil
}

func TestPartitionKeyFoldsCase(t *testing.T) {
	tbl := &event.Table{Schema: "app", Name: "kv", Columns: []event.Column{
		{Name: "k", Type: gomysql.MYSQL_TYPE_VARCHAR}, {Name: "v", Type: gomysql.MYSQL_TYPE_LONG}}, PrimaryKey: []int{0}}
	txn := &event.Txn{Pos: event.Position("p"), Kind: event.KindDML, Changes: []event.Change{
		{Op: event.OpUpdate, Namespace: "app.kv", Table: tbl, Before: []any{"a", int32(1)}, After: []any{"A ", int32(1)}},
	}}
	msgs, err := Encode(txn, Meta{Channel: "c"}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("a byte-wise key change must split into delete + create, got %d messages", len(msgs))
	}
	if string(msgs[0].Key) == string(msgs[1].Key) {
		t.Errorf("message keys must keep exact bytes: %s", msgs[0].Key)
	}
	if !bytes.Equal(msgs[0].PartitionKey, msgs[1].PartitionKey) {
		t.Errorf("'a' and 'A ' are one row under a case-insensitive PAD SPACE key; partition keys differ: %q vs %q", msgs[0].PartitionKey, msgs[1].PartitionKey)
	}
	other, _ := rowKeys(tbl, []any{"b", int32(1)})
	if bytes.Equal(other, msgs[0].Key) {
		t.Error("different rows share a message key")
	}
}

func TestEncodeRejects(t *testing.T) {
	tbl := &event.Table{Schema: "app", Name: "t", Columns: []event.Column{{Name: "id", Type: gomysql.MYSQL_TYPE_DOUBLE}}, PrimaryKey: []int{0}}
	cases := map[string]*event.Txn{
		"no table":    {Pos: event.Position("p"), Changes: []event.Change{{Op: event.OpCommand, Namespace: "0", Args: [][]byte{[]byte("SET")}}}},
		"NaN":         {Pos: event.Position("p"), Changes: []event.Change{{Op: event.OpInsert, Namespace: "app.t", Table: tbl, After: []any{math.NaN()}}}},
		"short image": {Pos: event.Position("p"), Changes: []event.Change{{Op: event.OpInsert, Namespace: "app.t", Table: tbl, After: []any{}}}},
	}
	for name, txn := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Encode(txn, Meta{}, time.Unix(0, 0)); err == nil {
				t.Fatal("Encode accepted it")
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	schema := `"schema":{"columns":[{"name":"id","type":3}],"primary_key":["id"],"unique_keys":[]}`
	src := `"source":{"db":"app","table":"t"}`
	cases := map[string]string{
		"not json":       `{`,
		"bad op":         `{"op":"x","after":{"id":1},` + src + `,` + schema + `}`,
		"no schema":      `{"op":"c","after":{"id":1},` + src + `}`,
		"missing column": `{"op":"c","after":{},` + src + `,` + schema + `}`,
		"extra column":   `{"op":"c","after":{"id":1,"x":2},` + src + `,` + schema + `}`,
		"no after":       `{"op":"c",` + src + `,` + schema + `}`,
		"no before":      `{"op":"d",` + src + `,` + schema + `}`,
		"bad number":     `{"op":"c","after":{"id":1.5},` + src + `,` + schema + `}`,
		"bad object":     `{"op":"c","after":{"id":{"x":1}},` + src + `,` + schema + `}`,
		"unknown pk":     `{"op":"c","after":{"id":1},` + src + `,"schema":{"columns":[{"name":"id","type":3}],"primary_key":["nope"]}}`,
		"no db":          `{"op":"c","after":{"id":1},"source":{"table":"t"},` + schema + `}`,
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := NewDecoder().Decode([]byte(v))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}
