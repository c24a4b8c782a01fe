package mongo

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/test/harness"
)

var kvTable = &event.Table{Schema: "app", Name: "kv", Columns: []event.Column{
	{Name: "k", Type: gomysql.MYSQL_TYPE_LONG}, {Name: "v", Type: gomysql.MYSQL_TYPE_VARCHAR, Nullable: true}},
	PrimaryKey: []int{0}}

func TestRowConversion(t *testing.T) {
	tbl := &event.Table{Schema: "app", Name: "t", Columns: []event.Column{
		{Name: "r", Type: gomysql.MYSQL_TYPE_SHORT}, {Name: "id", Type: gomysql.MYSQL_TYPE_LONG},
		{Name: "big", Type: gomysql.MYSQL_TYPE_LONGLONG, Unsigned: true}, {Name: "de", Type: gomysql.MYSQL_TYPE_NEWDECIMAL},
		{Name: "f", Type: gomysql.MYSQL_TYPE_FLOAT}, {Name: "bin", Type: gomysql.MYSQL_TYPE_BLOB, Binary: true},
		{Name: "txt", Type: gomysql.MYSQL_TYPE_VARCHAR}, {Name: "n", Type: gomysql.MYSQL_TYPE_LONG, Nullable: true}},
		PrimaryKey: []int{0, 1}}
	row := []any{int16(2), int32(7), uint64(math.MaxUint64), "12.50", float32(0.1), []byte{0, 0xff}, "héllo", nil}
	ws, err := changeWrites(&event.Change{Op: event.OpInsert, Namespace: "app.t", Table: tbl, After: row})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 {
		t.Fatalf("got %d writes", len(ws))
	}
	doc := ws[0].doc.(bson.D)
	dec, _ := bson.ParseDecimal128("12.50")
	big, _ := bson.ParseDecimal128("18446744073709551615")
	want := bson.D{{Key: "_id", Value: bson.D{{Key: "r", Value: int64(2)}, {Key: "id", Value: int64(7)}}},
		{Key: "r", Value: int64(2)}, {Key: "id", Value: int64(7)}, {Key: "big", Value: big}, {Key: "de", Value: dec},
		{Key: "f", Value: 0.1}, {Key: "bin", Value: bson.Binary{Data: []byte{0, 0xff}}}, {Key: "txt", Value: "héllo"}, {Key: "n", Value: nil}}
	if !reflect.DeepEqual(doc, want) {
		t.Fatalf("document\n got %#v\nwant %#v", doc, want)
	}

	// A key change deletes the old _id and replaces the new one.
	moved := append([]any(nil), row...)
	moved[1] = int32(8)
	ws, err = changeWrites(&event.Change{Op: event.OpUpdate, Namespace: "app.t", Table: tbl, Before: row, After: moved})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].doc != nil || ws[1].doc == nil || ws[0].key == ws[1].key {
		t.Fatalf("key change: got %+v, want delete old + replace new", ws)
	}
	// An update keeping the key is one replace.
	ws, _ = changeWrites(&event.Change{Op: event.OpUpdate, Namespace: "app.t", Table: tbl, Before: row, After: row})
	if len(ws) != 1 || ws[0].doc == nil {
		t.Fatalf("update: got %+v, want one replace", ws)
	}
	keyless := &event.Table{Schema: "app", Name: "nokey", Columns: tbl.Columns}
	if _, err := changeWrites(&event.Change{Op: event.OpInsert, Namespace: "app.nokey", Table: keyless, After: row}); err == nil {
		t.Fatal("a keyless row was accepted")
	}
}

// startFerretDB builds and starts the embedded FerretDB of test/ferretdb
// (SQLite backend) and returns its URI. It skips the test, saying so, when
// FerretDB cannot be built or started here.
func startFerretDB(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("FerretDB tests: skipped with -short (building FerretDB takes minutes on a cold cache)")
	}
	if os.Getenv("HAMAL_TEST_FERRETDB") == "" {
		t.Skip("FerretDB tests run with `make test-mongo` (HAMAL_TEST_FERRETDB=1): a cold build of FerretDB takes 10-45 minutes on a 2-core machine, too long for `make test`")
	}
	src, err := filepath.Abs("../../test/ferretdb")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ferretdb")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("FerretDB (test/ferretdb) does not build here, so the MongoDB sink is not tested against a server: %v\n%s", err, out)
	}
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-dir", t.TempDir(), "-listen", fmt.Sprintf("127.0.0.1:%d", port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder // FerretDB logs at debug level; shown only on failure
	var logsMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { logsMu.Lock(); defer logsMu.Unlock(); return logs.Write(p) })
	t.Cleanup(func() {
		if t.Failed() {
			logsMu.Lock()
			defer logsMu.Unlock()
			t.Logf("FerretDB log (last 4000 bytes):\n%s", tailString(logs.String(), 4000))
		}
	})
	exited, err := harness.Spawn(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if uri, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- uri
			}
		}
	}()
	select {
	case uri := <-ready:
		return uri
	case err := <-exited:
		t.Skipf("FerretDB exited at start (%v), so the MongoDB sink is not tested against a server", err)
	case <-time.After(30 * time.Second):
		t.Skip("FerretDB did not listen within 30s, so the MongoDB sink is not tested against a server")
	}
	return ""
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func put(k int32, v any) event.Change {
	return event.Change{Op: event.OpInsert, Namespace: "app.kv", Table: kvTable, After: []any{k, v}}
}

func txnOf(pos int, cs ...event.Change) *event.Txn {
	return &event.Txn{Pos: event.Position(fmt.Sprint(pos)), Kind: event.KindDML, Changes: cs}
}

// contents returns a collection as _id → document (without _id), as
// canonical extended JSON.
func contents(t *testing.T, c *mongo.Collection) map[string]string {
	t.Helper()
	cur, err := c.Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range docs {
		out[d.Lookup("_id").String()] = d.String()
	}
	return out
}

func TestAgainstFerretDB(t *testing.T) {
	uri := startFerretDB(t)
	ctx := context.Background()
	s, err := Open(ctx, Config{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	kv := client.Database("app").Collection("kv")
	docs := client.Database("shop").Collection("docs")

	t.Run("insert update delete", func(t *testing.T) {
		batch := []*event.Txn{
			txnOf(1, put(1, "a"), put(2, "b")),
			txnOf(2, put(3, "c"), event.Change{Op: event.OpUpdate, Namespace: "app.kv", Table: kvTable, Before: []any{int32(3), "c"}, After: []any{int32(3), "c2"}}),
			txnOf(3, put(4, "d"), event.Change{Op: event.OpDelete, Namespace: "app.kv", Table: kvTable, Before: []any{int32(4), "d"}}),
		}
		if err := s.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
		// Key change 1 → 5.
		if err := s.Apply(ctx, []*event.Txn{txnOf(4, event.Change{Op: event.OpUpdate, Namespace: "app.kv", Table: kvTable, Before: []any{int32(1), "a"}, After: []any{int32(5), "a"}})}); err != nil {
			t.Fatal(err)
		}
		got := contents(t, kv)
		want := map[string]string{
			`{"$numberLong":"2"}`: `{"_id": {"$numberLong":"2"},"k": {"$numberLong":"2"},"v": "b"}`,
			`{"$numberLong":"3"}`: `{"_id": {"$numberLong":"3"},"k": {"$numberLong":"3"},"v": "c2"}`,
			`{"$numberLong":"5"}`: `{"_id": {"$numberLong":"5"},"k": {"$numberLong":"5"},"v": "a"}`,
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("app.kv\n got %v\nwant %v", got, want)
		}

		// Document changes (MongoDB source shape), fields removed by a
		// replace stay removed.
		d1, _ := bson.Marshal(bson.D{{Key: "_id", Value: "x"}, {Key: "a", Value: 1}, {Key: "b", Value: 2}})
		d2, _ := bson.Marshal(bson.D{{Key: "_id", Value: "x"}, {Key: "a", Value: 3}})
		k2, _ := bson.Marshal(bson.D{{Key: "_id", Value: "y"}})
		d3, _ := bson.Marshal(bson.D{{Key: "_id", Value: "y"}, {Key: "z", Value: true}})
		if err := s.Apply(ctx, []*event.Txn{
			txnOf(5, event.Change{Op: event.OpInsert, Namespace: "shop.docs", After: []any{bson.Raw(d1)}, Keys: [][]byte{[]byte("x")}},
				event.Change{Op: event.OpInsert, Namespace: "shop.docs", After: []any{bson.Raw(d3)}, Keys: [][]byte{[]byte("y")}}),
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, []*event.Txn{
			txnOf(6, event.Change{Op: event.OpUpdate, Namespace: "shop.docs", After: []any{bson.Raw(d2)}, Keys: [][]byte{[]byte("x")}}),
			txnOf(7, event.Change{Op: event.OpDelete, Namespace: "shop.docs", Before: []any{bson.Raw(k2)}, Keys: [][]byte{[]byte("y")}}),
		}); err != nil {
			t.Fatal(err)
		}
		got = contents(t, docs)
		want = map[string]string{`"x"`: `{"_id": "x","a": {"$numberInt":"3"}}`}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("shop.docs\n got %v\nwant %v", got, want)
		}
	})

	t.Run("replay of any suffix converges", func(t *testing.T) {
		coll := client.Database("app").Collection("replay")
		tbl := &event.Table{Schema: "app", Name: "replay", Columns: kvTable.Columns, PrimaryKey: []int{0}}
		rng := rand.New(rand.NewPCG(3, 4))
		state := map[int32]string{}
		var txns []*event.Txn
		for i := 0; i < 150; i++ {
			k := int32(rng.IntN(25))
			v, exists := state[k]
			var c event.Change
			switch {
			case !exists:
				nv := fmt.Sprintf("v%d", i)
				c = event.Change{Op: event.OpInsert, Namespace: "app.replay", Table: tbl, After: []any{k, nv}}
				state[k] = nv
			case rng.IntN(4) == 0:
				c = event.Change{Op: event.OpDelete, Namespace: "app.replay", Table: tbl, Before: []any{k, v}}
				delete(state, k)
			case rng.IntN(4) == 0:
				to := int32(100 + i) // key change to a fresh key
				c = event.Change{Op: event.OpUpdate, Namespace: "app.replay", Table: tbl, Before: []any{k, v}, After: []any{to, v}}
				delete(state, k)
				state[to] = v
			default:
				nv := fmt.Sprintf("v%d", i)
				c = event.Change{Op: event.OpUpdate, Namespace: "app.replay", Table: tbl, Before: []any{k, v}, After: []any{k, nv}}
				state[k] = nv
			}
			txns = append(txns, txnOf(i, c))
		}
		// Source order, one Txn per Apply (each conflicts with others on
		// its key, so the DAG would hand them out one by one per key).
		applyAll := func(from int) {
			for _, txn := range txns[from:] {
				if err := s.Apply(ctx, []*event.Txn{txn}); err != nil {
					t.Fatal(err)
				}
			}
		}
		expect := func(when string) {
			got := contents(t, coll)
			want := map[string]string{}
			for k, v := range state {
				want[fmt.Sprintf(`{"$numberLong":"%d"}`, k)] = fmt.Sprintf(`{"_id": {"$numberLong":"%d"},"k": {"$numberLong":"%d"},"v": "%s"}`, k, k, v)
			}
			if !reflect.DeepEqual(got, want) {
				var keys []string
				for k := range got {
					if got[k] != want[k] {
						keys = append(keys, k)
					}
				}
				for k := range want {
					if _, ok := got[k]; !ok {
						keys = append(keys, k)
					}
				}
				sort.Strings(keys)
				t.Fatalf("%s: %d documents, want %d; differing _ids %v", when, len(got), len(want), keys)
			}
		}
		applyAll(0)
		expect("after the first pass")
		for _, from := range []int{149, 120, 60, 0} {
			applyAll(from)
			expect(fmt.Sprintf("after replaying from Txn %d", from))
		}
	})

	t.Run("barriers", func(t *testing.T) { testBarriers(t, s, client, "") })

	t.Run("site on a standalone target", func(t *testing.T) {
		// FerretDB is no replica set: no transactions, no marker.
		ss, err := Open(ctx, Config{URI: uri, Site: "a", Channel: "b2a"})
		if err != nil {
			t.Fatal(err)
		}
		defer ss.Close()
		if ss.Transactions() {
			t.Fatal("FerretDB taken for a replica set")
		}
		if err := ss.Apply(ctx, []*event.Txn{{Pos: event.Position("m"), Kind: event.KindDML, Origin: "b", Path: []string{"b", "a"},
			Changes: []event.Change{docChange(event.OpInsert, "shop.standalone", "_id", 1)}}}); err != nil {
			t.Fatal(err)
		}
		if got := contents(t, client.Database("shop").Collection("standalone")); len(got) != 1 {
			t.Fatalf("shop.standalone holds %v", got)
		}
		if n, err := client.Database(HamalDB).Collection(MarkerColl).CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
			t.Fatalf("marker documents on a standalone target: %d, %v", n, err)
		}
	})
}

func TestUnreachableIsTransient(t *testing.T) {
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = Open(ctx, Config{URI: fmt.Sprintf("mongodb://u:secret@127.0.0.1:%d/?serverSelectionTimeoutMS=500", port)})
	if err == nil || !retry.IsTransient(err) {
		t.Fatalf("got %v, want a transient error", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}
