package reshard

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/shardrule"
	"github.com/hamal-replication/hamal/sink"
)

// recordSink keeps what it was given (the router's split is pure logic; the
// real MySQL sinks behind it are exercised by the e2e tests).
type recordSink struct {
	mu   sync.Mutex
	got  []*event.Txn
	fail error
}

func (s *recordSink) Apply(_ context.Context, batch []*event.Txn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.got = append(s.got, batch...)
	return nil
}

func (s *recordSink) Close() error { return nil }

func (s *recordSink) ops() string {
	var out []string
	for _, txn := range s.got {
		if txn.Kind == event.KindDDL {
			out = append(out, "ddl")
			continue
		}
		for _, c := range txn.Changes {
			img := c.After
			if img == nil {
				img = c.Before
			}
			out = append(out, c.Op.String()+" "+c.Namespace+" "+string(mustText(img[0])))
		}
	}
	return strings.Join(out, "; ")
}

type sinkT = sink.Sink

func mustText(v any) []byte { b, _ := shardrule.KeyText(v); return b }

func TestRouterSplits(t *testing.T) {
	tbl := &event.Table{Schema: "app", Name: "users", Columns: []event.Column{{Name: "id"}, {Name: "v"}}, PrimaryKey: []int{0}}
	sinks := []*recordSink{{}, {}}
	r := NewRouter([]sinkT{sinks[0], sinks[1]}, map[string]Route{
		"app.users": {Rename: "new.people", Rule: shardrule.HashRule{N: 2}, ShardKey: "id"},
	})
	batch := []*event.Txn{
		{Seq: 1, Kind: event.KindDML, Changes: []event.Change{
			{Op: event.OpInsert, Namespace: "app.users", Table: tbl, After: []any{int64(1), "a"}},
			{Op: event.OpInsert, Namespace: "app.users", Table: tbl, After: []any{int64(2), "b"}},
		}},
		{Seq: 2, Kind: event.KindDML, Changes: []event.Change{ // PK change 1 → 2: moves the row
			{Op: event.OpUpdate, Namespace: "app.users", Table: tbl, Before: []any{int64(1), "a"}, After: []any{int64(4), "a"}},
		}},
		{Seq: 3, Kind: event.KindHeartbeat},
	}
	if err := r.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	var want [2][]string
	shard := func(id int64) int { s, _ := shardrule.HashRule{N: 2}.Shard(id); return s }
	want[shard(1)] = append(want[shard(1)], "insert new.people 1")
	want[shard(2)] = append(want[shard(2)], "insert new.people 2")
	want[shard(1)] = append(want[shard(1)], "delete new.people 1")
	want[shard(4)] = append(want[shard(4)], "insert new.people 4")
	if shard(1) == shard(4) {
		t.Fatal("test needs keys 1 and 4 on different shards")
	}
	for i, s := range sinks {
		if got := s.ops(); got != strings.Join(want[i], "; ") {
			t.Errorf("sink %d got %q; want %q", i, got, want[i])
		}
	}
	if tbl.Schema != "app" {
		t.Errorf("the router modified the source's table description")
	}

	ddl := &event.Txn{Seq: 4, Kind: event.KindDDL, DDL: &event.DDL{Schema: "app", Statement: "ALTER TABLE users ADD COLUMN x INT"}}
	if err := r.Apply(context.Background(), []*event.Txn{ddl}); err == nil || !strings.Contains(err.Error(), "renames") {
		t.Errorf("DDL on a renamed table: err %v", err)
	}
	plain := NewRouter([]sinkT{sinks[0], sinks[1]}, map[string]Route{"app.users": {Rule: shardrule.HashRule{N: 2}, ShardKey: "id"}})
	if err := plain.Apply(context.Background(), []*event.Txn{ddl}); err != nil {
		t.Fatal(err)
	}
	for i, s := range sinks {
		if !strings.HasSuffix(s.ops(), "ddl") {
			t.Errorf("sink %d did not get the DDL: %s", i, s.ops())
		}
	}

	other := &event.Table{Schema: "app", Name: "other", Columns: []event.Column{{Name: "id"}}}
	err := plain.Apply(context.Background(), []*event.Txn{{Kind: event.KindDML, Changes: []event.Change{{Op: event.OpInsert, Table: other, After: []any{1}}}}})
	if err == nil || !strings.Contains(err.Error(), "not in the migration plan") {
		t.Errorf("unplanned table: err %v", err)
	}

	sinks[1].fail = retry.Transient(errors.New("connection lost"))
	err = plain.Apply(context.Background(), batch[:1])
	if !retry.IsTransient(err) {
		t.Errorf("a transient part should make the batch transient: %v", err)
	}
	sinks[1].fail = errors.New("constraint")
	if err := plain.Apply(context.Background(), batch[:1]); err == nil || retry.IsTransient(err) {
		t.Errorf("a fatal part should make the batch fatal: %v", err)
	}
}
