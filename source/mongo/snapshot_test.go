package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
)

// fakeCopier holds collections in memory, documents in _id order (the
// driver's copier reads a cursor sorted by _id; no server can run here).
type fakeCopier struct {
	ts    bson.Timestamp
	colls map[string][]bson.Raw
	fail  string // ns whose scan fails half way
}

func (f *fakeCopier) ClusterTime(context.Context) (bson.Timestamp, error) { return f.ts, nil }

func (f *fakeCopier) Collections(context.Context) ([]string, error) {
	var out []string
	for ns := range f.colls {
		out = append(out, ns)
	}
	return out, nil
}

func (f *fakeCopier) Scan(_ context.Context, ns string, fn func(bson.Raw) error) error {
	for i, d := range f.colls[ns] {
		if ns == f.fail && i == len(f.colls[ns])/2 {
			return errors.New("cursor killed")
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

func doc(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newCopier(t *testing.T) *fakeCopier {
	cp := &fakeCopier{ts: bson.Timestamp{T: 1701780000, I: 7}, colls: map[string][]bson.Raw{}}
	for i := 0; i < 250; i++ {
		cp.colls["app.a"] = append(cp.colls["app.a"], doc(t, bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: i}}))
	}
	cp.colls["app.b"] = []bson.Raw{doc(t, bson.D{{Key: "_id", Value: int32(1)}}), doc(t, bson.D{{Key: "_id", Value: "x"}}),
		doc(t, bson.D{{Key: "_id", Value: bson.D{{Key: "k", Value: 1}}}})}
	return cp
}

// TestInitialSync: every document of every collection arrives as an
// insert positioned at the snapshot, each collection in _id order; then a
// heartbeat at the cluster time read before the copy, and the stream
// opens there (startAtOperationTime), so changes made during the copy are
// replayed from it.
func TestInitialSync(t *testing.T) {
	cp := newCopier(t)
	srv := &fakeServer{log: []step{ev(t, "update", "app.a", 3, "", ""), idle()}}
	s := newSource(Config{InitialSync: true, Site: "a"}, srv.open, cp, func(err error) error { return err }, Position{})
	t.Cleanup(func() { s.Close() })
	got := next(t, s, 254)
	byNS := map[string][]string{}
	var afterCopy []*event.Txn
	copied := 0
	for _, txn := range got {
		p, err := DecodePosition(txn.Pos)
		if err != nil {
			t.Fatal(err)
		}
		if p.Snapshot {
			if len(afterCopy) > 0 {
				t.Fatalf("snapshot Txn after the copy ended")
			}
			c := txn.Changes[0]
			if p.ClusterTime != "1701780000.7" || c.Op != event.OpInsert || txn.Origin != "a" {
				t.Errorf("copied Txn %+v at %+v", c, p)
			}
			byNS[c.Namespace] = append(byNS[c.Namespace], c.After[0].(bson.Raw).Lookup("_id").String())
			copied++
			continue
		}
		afterCopy = append(afterCopy, txn)
	}
	if copied != 253 || len(byNS["app.a"]) != 250 || strings.Join(byNS["app.b"], " ") != `{"$numberInt":"1"} "x" {"k": {"$numberInt":"1"}}` {
		t.Errorf("copied %d documents: app.a %d, app.b %v", copied, len(byNS["app.a"]), byNS["app.b"])
	}
	for i, id := range byNS["app.a"] {
		if id != fmt.Sprintf(`{"$numberInt":"%d"}`, i) {
			t.Fatalf("app.a out of _id order at %d: %s", i, id)
		}
	}
	if len(afterCopy) != 2 || afterCopy[0].Kind != event.KindHeartbeat || afterCopy[1].Changes[0].Op != event.OpUpdate {
		t.Fatalf("after the copy: %+v", afterCopy)
	}
	if p, _ := DecodePosition(afterCopy[0].Pos); p.ClusterTime != "1701780000.7" || p.Snapshot || len(p.Token) != 0 {
		t.Errorf("hand-off position %+v", p)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.opened) != 1 || srv.opened[0].ClusterTime != "1701780000.7" || len(srv.opened[0].Token) != 0 {
		t.Errorf("stream opened at %+v, want the cluster time read before the copy", srv.opened)
	}
}

// TestInitialSyncRepeatsFromSnapshot: a checkpoint inside the copy repeats
// it; a checkpoint after it does not; a failing collection names itself.
func TestInitialSyncRepeatsFromSnapshot(t *testing.T) {
	cp := newCopier(t)
	srv := &fakeServer{log: []step{idle()}}
	s := newSource(Config{}, srv.open, cp, func(err error) error { return err }, Position{ClusterTime: "1.1", Snapshot: true})
	got := next(t, s, 253)
	s.Close()
	if p, _ := DecodePosition(got[0].Pos); !p.Snapshot || p.ClusterTime != "1701780000.7" {
		t.Errorf("resumed inside a copy: first Txn at %+v, want a new copy", p)
	}
	srv2 := &fakeServer{log: []step{ev(t, "insert", "app.a", 900, "", "")}}
	s = newSource(Config{InitialSync: true}, srv2.open, cp, func(err error) error { return err }, Position{ClusterTime: "1701780000.7"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	txn, err := s.Next(ctx)
	s.Close()
	if err != nil || txn.Kind != event.KindDML || txn.Changes[0].After[0].(bson.Raw).Lookup("_id").Int32() != 900 {
		t.Errorf("resumed after the copy: %+v, %v; want the stream's insert, no copy", txn, err)
	}
	cp.fail = "app.a"
	s = newSource(Config{InitialSync: true}, srv.open, cp, func(err error) error { return retry.Transient(err) }, Position{})
	defer s.Close()
	for {
		txn, err := s.Next(ctx)
		if err != nil {
			if !strings.Contains(err.Error(), "initial sync of app.a") || !strings.Contains(err.Error(), "cursor killed") || !retry.IsTransient(err) {
				t.Errorf("failed copy: %v", err)
			}
			break
		}
		if p, _ := DecodePosition(txn.Pos); !p.Snapshot {
			t.Fatalf("a failed copy handed off to the stream at %s", txn.Pos)
		}
	}
}
