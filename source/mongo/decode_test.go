package mongo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hamal-replication/hamal/event"
)

// fixture reads testdata/<name>.json, change events in extended JSON
// shaped as the MongoDB manual ("Change Events") documents them, as raw
// BSON: one document, or each document of an array.
func fixture(t *testing.T, name string) []bson.Raw {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(strings.TrimSpace(string(text)), "[") {
		var wrapped struct {
			Events []bson.Raw `bson:"events"`
		}
		if err := bson.UnmarshalExtJSON([]byte(`{"events":`+string(text)+`}`), false, &wrapped); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return wrapped.Events
	}
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON(text, false, &raw); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return []bson.Raw{raw}
}

func decodeFixture(t *testing.T, name string) Event {
	t.Helper()
	ev, err := Decode(fixture(t, name)[0])
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(ev.Token) == 0 || ev.Token.Lookup("_data").StringValue() == "" {
		t.Fatalf("%s: resume token %v", name, ev.Token)
	}
	return ev
}

func docOf(t *testing.T, v any) bson.Raw {
	t.Helper()
	d, ok := v.(bson.Raw)
	if !ok {
		t.Fatalf("image is %T, want bson.Raw", v)
	}
	return d
}

func TestDecodeInsert(t *testing.T) {
	ev := decodeFixture(t, "insert")
	c := ev.Change
	if ev.Op != "insert" || c == nil || c.Op != event.OpInsert || c.Namespace != "app.users" || ev.TxnID != "" {
		t.Fatalf("decoded %+v / %+v", ev, c)
	}
	if ev.ClusterTime != (bson.Timestamp{T: 1701780266, I: 1}) || !ev.WallTime.Equal(time.Date(2023, 12, 5, 12, 44, 26, 123e6, time.UTC)) {
		t.Errorf("times %v %v", ev.ClusterTime, ev.WallTime)
	}
	doc := docOf(t, c.After[0])
	if doc.Lookup("name").StringValue() != "Ada" || doc.Lookup("_id").ObjectID().Hex() != "6560f1b2a9e1c6f7a8b9c0d1" || c.Before != nil {
		t.Errorf("after %s, before %v", doc, c.Before)
	}
	if len(c.Keys) != 1 || c.Keys[0][0] != byte(bson.TypeObjectID) || len(c.Keys[0]) != 13 {
		t.Errorf("keys %x", c.Keys)
	}
}

func TestDecodeUpdate(t *testing.T) {
	ev := decodeFixture(t, "update")
	c := ev.Change
	if c.Op != event.OpUpdate || c.Namespace != "app.users" {
		t.Fatalf("decoded %+v", c)
	}
	// The post-image (updateLookup) is applied, not updateDescription: it
	// already holds $set fields, removed fields and truncated arrays.
	doc := docOf(t, c.After[0])
	if doc.Lookup("age").Int32() != 37 || doc.Lookup("tags", "1").StringValue() != "z" {
		t.Errorf("after %s", doc)
	}
	if _, err := doc.LookupErr("nickname"); err == nil {
		t.Errorf("removed field present in %s", doc)
	}
	ins := decodeFixture(t, "insert")
	if string(ins.Change.Keys[0]) != string(c.Keys[0]) {
		t.Errorf("insert and update of one _id have different conflict keys")
	}
}

func TestDecodeUpdateOfDeletedDocument(t *testing.T) {
	ev := decodeFixture(t, "update_gone")
	c := ev.Change
	if c.Op != event.OpDelete || c.After != nil || docOf(t, c.Before[0]).Lookup("_id").StringValue() != "usr-7" {
		t.Fatalf("update whose lookup found nothing: %+v", c)
	}
}

func TestDecodeReplaceWithPreImage(t *testing.T) {
	ev := decodeFixture(t, "replace")
	c := ev.Change
	if c.Op != event.OpUpdate || c.Namespace != "app.orders" {
		t.Fatalf("decoded %+v", c)
	}
	if docOf(t, c.After[0]).Lookup("status").StringValue() != "shipped" || docOf(t, c.Before[0]).Lookup("status").StringValue() != "paid" {
		t.Errorf("after %v before %v", c.After, c.Before)
	}
	if c.Keys[0][0] != byte(bson.TypeInt32) {
		t.Errorf("key %x", c.Keys[0])
	}
}

func TestDecodeDelete(t *testing.T) {
	ev := decodeFixture(t, "delete")
	c := ev.Change
	if c.Op != event.OpDelete || c.After != nil || docOf(t, c.Before[0]).Lookup("_id").Int32() != 7 {
		t.Fatalf("decoded %+v", c)
	}
	pre := decodeFixture(t, "delete_preimage").Change
	if b := docOf(t, pre.Before[0]); b.Lookup("_id").Int32() != 8 || b.Lookup("status").StringValue() != "cancelled" {
		t.Errorf("delete with pre-image: before %s", b)
	}
}

func TestDecodeBarriers(t *testing.T) {
	for name, want := range map[string]event.DDL{
		"drop":         {Schema: "app", Statement: `{"drop":"orders"}`},
		"rename":       {Schema: "admin", Statement: `{"renameCollection":"app.users","to":"archive.users2023"}`},
		"dropDatabase": {Schema: "app", Statement: `{"dropDatabase":1}`},
	} {
		ev := decodeFixture(t, name)
		if ev.DDL == nil || *ev.DDL != want || ev.Change != nil {
			t.Errorf("%s: DDL %+v, want %+v", name, ev.DDL, want)
		}
	}
	ev := decodeFixture(t, "invalidate")
	if !ev.Invalidate || ev.DDL != nil || ev.Change != nil {
		t.Errorf("invalidate decoded as %+v", ev)
	}
}

func TestDecodeTransaction(t *testing.T) {
	evs := fixture(t, "txn")
	var got []Event
	for _, raw := range evs {
		ev, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	if got[0].TxnID == "" || got[0].TxnID != got[1].TxnID || got[1].TxnID != got[2].TxnID {
		t.Errorf("events of one transaction have TxnIDs %q %q %q", got[0].TxnID, got[1].TxnID, got[2].TxnID)
	}
	if got[3].TxnID == got[0].TxnID || got[3].TxnID == "" {
		t.Errorf("txnNumber 13 shares TxnID %q with 12", got[3].TxnID)
	}
	if got[2].Change != nil || got[2].Origin != "b" {
		t.Errorf("origin marker decoded as change %+v, origin %q", got[2].Change, got[2].Origin)
	}
}

func TestDecodeBadInput(t *testing.T) {
	for name, text := range map[string]string{
		"no token":                    `{"operationType":"insert","ns":{"db":"a","coll":"b"}}`,
		"unknown op":                  `{"_id":{"_data":"00"},"operationType":"createIndexes","ns":{"db":"a","coll":"b"}}`,
		"no documentKey":              `{"_id":{"_data":"00"},"operationType":"delete","ns":{"db":"a","coll":"b"}}`,
		"insert without fullDocument": `{"_id":{"_data":"00"},"operationType":"insert","ns":{"db":"a","coll":"b"},"documentKey":{"_id":1}}`,
		"mismatched _id":              `{"_id":{"_data":"00"},"operationType":"replace","ns":{"db":"a","coll":"b"},"documentKey":{"_id":1},"fullDocument":{"_id":2}}`,
	} {
		var raw bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(text), false, &raw); err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(raw); err == nil {
			t.Errorf("%s: decoded without error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestPositionRoundTrip(t *testing.T) {
	tok := decodeFixture(t, "insert").Token
	for _, p := range []Position{
		{Token: tok, ClusterTime: "1701780266.1"},
		{Token: tok, StartAfter: true},
		{ClusterTime: "1700000000.0"},
	} {
		got, err := DecodePosition(EncodePosition(p))
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Token) != string(p.Token) || got.ClusterTime != p.ClusterTime || got.StartAfter != p.StartAfter {
			t.Errorf("round trip %+v → %+v", p, got)
		}
	}
	for _, bad := range []string{``, `{}`, `{"token":"AAAA"}`, `{"cluster_time":"x"}`, `{"replid":"x"}`} {
		if _, err := DecodePosition(event.Position(bad)); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
