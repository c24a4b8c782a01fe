package envelope

import (
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// norm is a value as MySQL's text, temporal fractions without trailing
// zeros: what the target stores, whatever Go type carries it.
func norm(c event.Column, v any) string {
	if v == nil {
		return "NULL"
	}
	s, err := stringValue(c, v)
	if err != nil {
		return "ERROR " + err.Error()
	}
	if strings.Contains(s, ":") && strings.Contains(s, ".") && strings.Count(s, "-") <= 3 {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// TestFormatsDecodeBack encodes the all-types transaction in each format
// and decodes it back: every change has its op, table, key and values
// (as the target would store them), except what a format cannot carry,
// listed with the reason.
func TestFormatsDecodeBack(t *testing.T) {
	lossy := map[string]map[string]string{
		FormatHamal:    {"e": "an index, which the target stores as the same member", "st": "a bitmask, as e"},
		FormatDebezium: {"biu": "bigint.unsigned.handling.mode=long wraps values above 2^63-1"},
		FormatMaxwell:  {"bn": "Maxwell writes binary as base64 text and says nothing of the type", "bl": "same as bn"},
	}
	for _, o := range []FormatOptions{{Name: FormatHamal}, {Name: FormatDebezium, Schemas: true}, {Name: FormatCanal}, {Name: FormatMaxwell}} {
		t.Run(o.Name, func(t *testing.T) {
			enc, err := NewEncoder(o, Meta{Channel: "ch", Site: "sz"})
			if err != nil {
				t.Fatal(err)
			}
			txn := formatTxn()
			msgs, err := enc.Encode(txn, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			dec, err := NewChangeDecoder(o.Name)
			if err != nil {
				t.Fatal(err)
			}
			var got []event.Change
			for _, m := range msgs {
				c, src, err := dec.Decode(m.Key, m.Value)
				if m.Value == nil {
					if err != ErrTombstone {
						t.Fatalf("tombstone: got %v, want ErrTombstone", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("decode %s: %v", m.Value, err)
				}
				if src.DB != "app" || src.Table != "types" || c.Table.Namespace() != "app.types" {
					t.Fatalf("source %+v table %s", src, c.Table.Namespace())
				}
				if len(c.Table.PrimaryKey) != 1 || c.Table.Columns[c.Table.PrimaryKey[0]].Name != "id" {
					t.Fatalf("primary key %v", c.Table.PrimaryKey)
				}
				got = append(got, c)
			}
			if len(got) != len(txn.Changes) {
				t.Fatalf("%d changes decoded, want %d", len(got), len(txn.Changes))
			}
			orig := txn.Changes[0].Table
			for i, c := range got {
				want := txn.Changes[i]
				if c.Op != want.Op {
					t.Errorf("change %d: op %s, want %s", i, c.Op, want.Op)
				}
				for _, pair := range [][2][]any{{c.Before, want.Before}, {c.After, want.After}} {
					if (pair[0] == nil) != (pair[1] == nil) {
						t.Errorf("change %d: image presence differs", i)
						continue
					}
					for j := range pair[1] {
						col := orig.Columns[j]
						if _, skip := lossy[o.Name][col.Name]; skip {
							continue
						}
						if g, w := norm(c.Table.Columns[j], pair[0][j]), norm(col, pair[1][j]); g != w {
							t.Errorf("change %d column %s: %q, want %q", i, col.Name, g, w)
						}
					}
				}
			}
		})
	}
}

// TestForeignTablesApplyInOrder: a decoded Debezium/Canal/Maxwell table
// names no unique key but the primary key, so changes of two rows of it
// conflict (a unique value may move between them) and apply in order.
func TestForeignTablesApplyInOrder(t *testing.T) {
	enc, _ := NewEncoder(FormatOptions{Name: FormatCanal}, Meta{})
	dec, _ := NewChangeDecoder(FormatCanal)
	var keys [][]uint64
	for _, id := range []int32{1, 2} {
		row := workloadRow(id)
		msgs, err := enc.Encode(&event.Txn{Pos: event.Position("p"), Kind: event.KindDML,
			Changes: []event.Change{{Op: event.OpInsert, Namespace: "app.types", Table: workloadTypes(), After: row}}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := dec.Decode(msgs[0].Key, msgs[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Table.UniqueUnknown {
			t.Fatal("decoded table does not say its unique keys are unknown")
		}
		keys = append(keys, (&event.Txn{Kind: event.KindDML, Changes: []event.Change{c}}).ConflictKeys())
	}
	shared := false
	for _, a := range keys[0] {
		for _, b := range keys[1] {
			shared = shared || a == b
		}
	}
	if !shared {
		t.Errorf("rows 1 and 2 share no conflict key: %v %v", keys[0], keys[1])
	}
}
