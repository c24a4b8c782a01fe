package mongo

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
)

func TestParseBarrier(t *testing.T) {
	for _, tc := range []struct {
		name, schema, stmt string
		want               barrierCommand
		err                string
	}{
		{"drop", "app", `{"drop":"orders"}`, barrierCommand{kind: "drop", db: "app", coll: "orders"}, ""},
		{"rename", "admin", `{"renameCollection":"app.a","to":"archive.b"}`, barrierCommand{kind: "renameCollection", db: "admin", from: "app.a", to: "archive.b"}, ""},
		{"dropDatabase", "app", `{"dropDatabase":1}`, barrierCommand{kind: "dropDatabase", db: "app"}, ""},
		{"SQL", "app", "DROP TABLE app.kv", barrierCommand{}, "DROP TABLE app.kv"},
		{"other command", "app", `{"create":"x"}`, barrierCommand{}, `command "create"`},
		{"drop without schema", "", `{"drop":"orders"}`, barrierCommand{}, "database as its schema"},
		{"rename to a bare name", "admin", `{"renameCollection":"app.a","to":"b"}`, barrierCommand{}, `got "b"`},
		{"Hamal's database", "hamal", `{"drop":"origin_marker"}`, barrierCommand{}, "Hamal's own database"},
		{"rename into Hamal's database", "admin", `{"renameCollection":"app.a","to":"hamal.x"}`, barrierCommand{}, "Hamal's own database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBarrier(&event.DDL{Schema: tc.schema, Statement: tc.stmt})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func docChange(op event.Op, ns string, fields ...any) event.Change {
	d := bson.D{}
	for i := 0; i+1 < len(fields); i += 2 {
		d = append(d, bson.E{Key: fields[i].(string), Value: fields[i+1]})
	}
	raw, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	id := bson.Raw(raw).Lookup("_id")
	c := event.Change{Op: op, Namespace: ns, Keys: [][]byte{[]byte(idKey(id))}}
	if op == event.OpDelete {
		key, _ := bson.Marshal(bson.D{{Key: "_id", Value: d[0].Value}})
		c.Before = []any{bson.Raw(key)}
	} else {
		c.After = []any{bson.Raw(raw)}
	}
	return c
}

// TestPlanAndMarker checks, without a server, what a batch becomes: one
// write per document (the last change decides), grouped by namespace in
// first-seen order, and the marker a transaction starts with.
func TestPlanAndMarker(t *testing.T) {
	batch := []*event.Txn{
		{Pos: event.Position("1"), Kind: event.KindDML, Origin: "b", Path: []string{"b", "a"}, Changes: []event.Change{
			docChange(event.OpInsert, "app.x", "_id", 1, "v", "one"),
			docChange(event.OpInsert, "shop.y", "_id", "k", "v", true),
			docChange(event.OpUpdate, "app.x", "_id", 1, "v", "uno"),
		}},
		{Pos: event.Position("2"), Kind: event.KindHeartbeat},
		{Pos: event.Position("3"), Kind: event.KindDML, Origin: "b", Path: []string{"b", "a"}, Changes: []event.Change{
			docChange(event.OpInsert, "app.x", "_id", 2, "v", "two"),
			docChange(event.OpDelete, "shop.y", "_id", "k"),
		}},
	}
	nss, err := plan(batch)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nss {
		for _, m := range n.models() {
			switch m := m.(type) {
			case *mongo.ReplaceOneModel:
				got = append(got, fmt.Sprintf("%s.%s replace %v upsert=%v %s", n.db, n.coll, m.Filter, *m.Upsert, m.Replacement))
			case *mongo.DeleteOneModel:
				got = append(got, fmt.Sprintf("%s.%s delete %v", n.db, n.coll, m.Filter))
			}
		}
	}
	want := []string{
		`app.x replace {"_id":{"$numberInt":"1"}} upsert=true {"_id": {"$numberInt":"1"},"v": "uno"}`,
		`app.x replace {"_id":{"$numberInt":"2"}} upsert=true {"_id": {"$numberInt":"2"},"v": "two"}`,
		`shop.y delete {"_id":"k"}`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("plan\n got %q\nwant %q", got, want)
	}

	mk, err := sink.MarkerOf(batch)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := markerDoc("b2a", 3, mk), markerDoc("b2a", 3, mk)
	if m1[0] != (bson.E{Key: "_id", Value: "b2a/3"}) || m1[1] != (bson.E{Key: "origin", Value: "b"}) || m1[2] != (bson.E{Key: "path", Value: "b,a"}) || m1[3].Key != "n" {
		t.Errorf("marker %v", m1)
	}
	if m1[3].Value == m2[3].Value {
		t.Errorf("two markers share n %v: the second replace would write no event", m1[3].Value)
	}
	heartbeatFirst := append([]*event.Txn{{Kind: event.KindHeartbeat}}, batch...)
	if m, err := sink.MarkerOf(heartbeatFirst); err != nil || m.Origin != "b" || m.PathText() != "b,a" {
		t.Errorf("marker of a batch of one path: %v, %v; want its first data Txn's", m, err)
	}
	mixed := append(slices.Clone(batch), &event.Txn{Pos: event.Position("4"), Kind: event.KindDML, Path: []string{"a"}})
	if _, err := sink.MarkerOf(mixed); err == nil {
		t.Errorf("a batch of two paths was accepted")
	}

	// A barrier inside a batch, and Hamal's own database, are refused.
	if _, err := plan(append(slices.Clone(batch), &event.Txn{Pos: event.Position("5"), Kind: event.KindDDL, DDL: &event.DDL{Statement: `{"drop":"x"}`}})); err == nil {
		t.Errorf("a barrier inside a batch was accepted")
	}
	if _, err := plan([]*event.Txn{{Kind: event.KindDML, Changes: []event.Change{docChange(event.OpInsert, "hamal.origin_marker", "_id", "x")}}}); err == nil {
		t.Errorf("a write into hamal.* was accepted")
	}

	var p slotPool
	a, b := p.get(), p.get()
	p.put(a)
	if c := p.get(); a == b || c != a {
		t.Errorf("slots %d %d then %d: want distinct slots, a freed one reused", a, b, c)
	}
}

func TestIsReplicaSet(t *testing.T) {
	for _, tc := range []struct {
		hello bson.D
		want  bool
	}{
		{bson.D{{Key: "isWritablePrimary", Value: true}, {Key: "setName", Value: "rs0"}}, true},
		{bson.D{{Key: "isWritablePrimary", Value: true}}, false},                                  // standalone, FerretDB
		{bson.D{{Key: "isWritablePrimary", Value: true}, {Key: "msg", Value: "isdbgrid"}}, false}, // mongos
	} {
		raw, _ := bson.Marshal(tc.hello)
		if got := isReplicaSet(raw); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.hello, got, tc.want)
		}
	}
}

func collections(t *testing.T, c *mongo.Client, db string) []string {
	t.Helper()
	names, err := c.Database(db).ListCollectionNames(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func barrier(pos, schema, stmt string) []*event.Txn {
	return []*event.Txn{{Pos: event.Position(pos), Kind: event.KindDDL, DDL: &event.DDL{Schema: schema, Statement: stmt}}}
}

// testBarriers runs against a server (FerretDB or a replica set): drop,
// rename and dropDatabase are applied, and replaying each converges, both
// when the fence remembers it and when it does not (a crash between the
// command and its record).
// Databases are named prefix+"bar" and prefix+"dropme".
func testBarriers(t *testing.T, s *Sink, client *mongo.Client, prefix string) {
	bar, dropme := prefix+"bar", prefix+"dropme"
	ctx := context.Background()
	fill := func(ns string, ids ...int) {
		t.Helper()
		var cs []event.Change
		for _, id := range ids {
			cs = append(cs, docChange(event.OpInsert, ns, "_id", id, "ns", ns))
		}
		if err := s.Apply(ctx, []*event.Txn{{Pos: event.Position("fill " + ns), Kind: event.KindDML, Changes: cs}}); err != nil {
			t.Fatal(err)
		}
	}
	apply := func(batch []*event.Txn) {
		t.Helper()
		if err := s.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	forget := func() {
		t.Helper()
		if _, err := client.Database(HamalDB).Collection(FenceColl).DeleteMany(ctx, bson.D{}); err != nil {
			t.Fatal(err)
		}
	}
	idsOf := func(db, coll string) []string {
		t.Helper()
		var out []string
		for id := range contents(t, client.Database(db).Collection(coll)) {
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}

	fill(bar+".keep", 1)
	fill(bar+".gone", 1, 2)
	fill(bar+".old", 1, 2, 3)
	fill(bar+".dst", 9)
	fill(bar+".src", 4, 5)
	fill(dropme+".a", 1)
	fill(dropme+".b", 1)

	drop := barrier(`{"token":"drop"}`, bar, `{"drop":"gone"}`)
	apply(drop)
	if got := collections(t, client, bar); !slices.Equal(got, []string{"dst", "keep", "old", "src"}) {
		t.Fatalf("after drop: bar holds %v", got)
	}
	apply(drop) // replay, fenced
	forget()
	apply(drop) // replay, not fenced: NamespaceNotFound is success
	if got := collections(t, client, bar); !slices.Equal(got, []string{"dst", "keep", "old", "src"}) {
		t.Fatalf("after replaying the drop: bar holds %v", got)
	}

	rename := barrier(`{"token":"rename"}`, "admin", fmt.Sprintf(`{"renameCollection":"%s.old","to":"%s.new"}`, bar, bar))
	apply(rename)
	if got := collections(t, client, bar); !slices.Equal(got, []string{"dst", "keep", "new", "src"}) {
		t.Fatalf("after rename: bar holds %v", got)
	}
	want := []string{`{"$numberInt":"1"}`, `{"$numberInt":"2"}`, `{"$numberInt":"3"}`}
	if got := idsOf(bar, "new"); !reflect.DeepEqual(got, want) {
		t.Fatalf(bar+".new holds %v, want %v", got, want)
	}
	apply(rename) // fenced
	forget()
	apply(rename) // source gone, target exists: converged
	if got := collections(t, client, bar); !slices.Equal(got, []string{"dst", "keep", "new", "src"}) {
		t.Fatalf("after replaying the rename: bar holds %v", got)
	}
	if got := idsOf(bar, "new"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after replaying the rename: bar.new holds %v, want %v", got, want)
	}

	// A rename onto an existing collection that is not a replay replaces
	// it, as the source's rename (dropTarget) did.
	apply(barrier(`{"token":"rename2"}`, "admin", fmt.Sprintf(`{"renameCollection":"%s.src","to":"%s.dst"}`, bar, bar)))
	if got := idsOf(bar, "dst"); !reflect.DeepEqual(got, []string{`{"$numberInt":"4"}`, `{"$numberInt":"5"}`}) {
		t.Fatalf("after a rename onto bar.dst: it holds %v, want the renamed collection's 4, 5", got)
	}
	if got := collections(t, client, bar); !slices.Equal(got, []string{"dst", "keep", "new"}) {
		t.Fatalf("after a rename onto bar.dst: bar holds %v", got)
	}

	dropDB := barrier(`{"token":"dropdb"}`, dropme, `{"dropDatabase":1}`)
	apply(dropDB)
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(dbs, dropme) || !slices.Contains(dbs, bar) {
		t.Fatalf("after dropDatabase: databases %v", dbs)
	}
	apply(dropDB)
	forget()
	apply(dropDB)
	if got := collections(t, client, dropme); len(got) != 0 {
		t.Fatalf("after replaying dropDatabase: dropme holds %v", got)
	}

	// SQL from a MySQL source stays refused, fatally, naming the statement.
	err = s.Apply(ctx, barrier("9", "app", "DROP TABLE app.kv"))
	if err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), "DROP TABLE app.kv") {
		t.Fatalf("SQL DDL: got %v, want a fatal error naming it", err)
	}
}
