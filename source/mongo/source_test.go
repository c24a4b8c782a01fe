package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
)

// The stream logic is tested over a fake change stream because no MongoDB
// server with change streams can run on the build machines (they need a
// replica set; embedded FerretDB has none). The fake keeps an event log
// like the oplog: a stream opened with resumeAfter/startAfter a token
// continues right after that event, as the server does; "idle" entries
// are empty getMores, after which the post-batch resume token is the last
// event's. The integration test against a real replica set is in
// integration_test.go (HAMAL_TEST_MONGO_URI).

type step struct {
	raw  bson.Raw // nil: an empty getMore
	fail error
}

type fakeServer struct {
	mu     sync.Mutex
	log    []step
	opened []Position // positions the source opened streams at
}

func (f *fakeServer) open(_ context.Context, from Position) (cursor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened = append(f.opened, from)
	at := 0
	if len(from.Token) > 0 {
		at = -1
		for i, s := range f.log {
			if s.raw != nil && string(s.raw.Lookup("_id").Value) == string(from.Token) {
				at = i + 1
			}
		}
		if at < 0 {
			return nil, fmt.Errorf("resume token not found")
		}
		if !from.StartAfter && f.log[at-1].raw.Lookup("operationType").StringValue() == "invalidate" {
			return nil, fmt.Errorf("resumeAfter an invalidate token")
		}
	}
	return &fakeCursor{srv: f, at: at}, nil
}

type fakeCursor struct {
	srv  *fakeServer
	at   int
	cur  bson.Raw
	last bson.Raw
	err  error
}

func (c *fakeCursor) TryNext(ctx context.Context) bool {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if c.at >= len(c.srv.log) {
		c.srv.mu.Unlock()
		select { // the server's await time
		case <-ctx.Done():
		case <-time.After(time.Millisecond):
		}
		c.srv.mu.Lock()
		return false
	}
	s := c.srv.log[c.at]
	c.at++
	switch {
	case s.fail != nil:
		c.err = s.fail
		return false
	case s.raw == nil:
		return false
	}
	c.cur = s.raw
	c.last = s.raw.Lookup("_id").Document()
	if s.raw.Lookup("operationType").StringValue() == "invalidate" {
		c.at = len(c.srv.log) + 1 // nothing follows an invalidate on this stream
	}
	return true
}

func (c *fakeCursor) Current() bson.Raw           { return c.cur }
func (c *fakeCursor) ResumeToken() bson.Raw       { return c.last }
func (c *fakeCursor) Err() error                  { return c.err }
func (c *fakeCursor) Close(context.Context) error { return nil }

var tokenSeq int

// ev builds a change event like the fixtures; txn is "" or "<lsid>/<n>".
func ev(t *testing.T, op, ns string, id int, txn string, extra string) step {
	t.Helper()
	tokenSeq++
	db, coll, _ := strings.Cut(ns, ".")
	text := fmt.Sprintf(`{"_id":{"_data":"8265%08X"},"operationType":%q,"clusterTime":{"$timestamp":{"t":1701780000,"i":%d}},"ns":{"db":%q,"coll":%q}`,
		tokenSeq, op, tokenSeq, db, coll)
	switch op {
	case "insert", "update", "replace":
		text += fmt.Sprintf(`,"documentKey":{"_id":%d},"fullDocument":{"_id":%d,"v":%d%s}`, id, id, tokenSeq, extra)
	case "delete":
		text += fmt.Sprintf(`,"documentKey":{"_id":%d}`, id)
	}
	if txn != "" {
		i := strings.LastIndexByte(txn, '/')
		lsid, n := txn[:i], txn[i+1:]
		text += fmt.Sprintf(`,"lsid":{"id":{"$binary":{"base64":%q,"subType":"04"}}},"txnNumber":{"$numberLong":%q}`, lsid, n)
	}
	text += "}"
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(text), false, &raw); err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return step{raw: raw}
}

func idle() step { return step{} }

func tokenOf(s step) []byte { return s.raw.Lookup("_id").Document() }

func start(t *testing.T, srv *fakeServer, from Position, site string) *Source {
	t.Helper()
	s := newSource(Config{Site: site}, srv.open, nil, func(err error) error { return retry.Transient(err) }, from)
	t.Cleanup(func() { s.Close() })
	return s
}

// next reads Txns until n non-heartbeat ones arrived (heartbeats are
// returned too, in order).
func next(t *testing.T, s *Source, n int) []*event.Txn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*event.Txn
	for data := 0; data < n; {
		txn, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %d Txns: %v", len(out), err)
		}
		out = append(out, txn)
		if txn.Kind != event.KindHeartbeat {
			data++
		}
	}
	return out
}

func dataTxns(txns []*event.Txn) []*event.Txn {
	var out []*event.Txn
	for _, t := range txns {
		if t.Kind != event.KindHeartbeat {
			out = append(out, t)
		}
	}
	return out
}

func ids(t *testing.T, txn *event.Txn) string {
	t.Helper()
	var parts []string
	for _, c := range txn.Changes {
		var d bson.Raw
		if c.Op == event.OpDelete {
			d = c.Before[0].(bson.Raw)
		} else {
			d = c.After[0].(bson.Raw)
		}
		parts = append(parts, fmt.Sprintf("%s:%s%d", c.Op, c.Namespace, d.Lookup("_id").Int32()))
	}
	return strings.Join(parts, " ")
}

func posToken(t *testing.T, txn *event.Txn) []byte {
	t.Helper()
	p, err := DecodePosition(txn.Pos)
	if err != nil {
		t.Fatal(err)
	}
	return p.Token
}

const lsidA, lsidB = "3q2+796tvu/erb7v3q2+7w==", "AAECAwQFBgcICQoLDA0ODw=="

// TestStreamGroupsTransactions: consecutive events of one lsid+txnNumber
// are one Txn, positioned at its last event's token; a transaction that
// spans a getMore batch boundary stays whole; events outside transactions
// are one Txn each; an idle stream emits a heartbeat at the post-batch
// resume token only with no transaction pending.
func TestStreamGroupsTransactions(t *testing.T) {
	srv := &fakeServer{}
	a1, a2, a3 := ev(t, "insert", "app.acc", 1, lsidA+"/12", ""), ev(t, "update", "app.acc", 2, lsidA+"/12", ""), ev(t, "delete", "app.acc", 3, lsidA+"/12", "")
	b1, b2 := ev(t, "insert", "app.acc", 4, lsidA+"/13", ""), ev(t, "insert", "app.x", 5, lsidA+"/13", "")
	c1 := ev(t, "replace", "app.acc", 1, lsidB+"/12", "")
	solo := ev(t, "insert", "app.acc", 9, "", "")
	srv.log = []step{solo, a1, a2, a3, b1, b2, c1, ev(t, "delete", "app.acc", 9, "", ""), idle()}
	s := start(t, srv, Position{}, "sz")
	got := next(t, s, 5)
	data := dataTxns(got)
	want := []string{"insert:app.acc9", "insert:app.acc1 update:app.acc2 delete:app.acc3", "insert:app.acc4 insert:app.x5", "update:app.acc1", "delete:app.acc9"}
	for i, w := range want {
		if g := ids(t, data[i]); g != w {
			t.Errorf("Txn %d: %s, want %s", i, g, w)
		}
		if data[i].Origin != "sz" || data[i].Kind != event.KindDML {
			t.Errorf("Txn %d: origin %q kind %s", i, data[i].Origin, data[i].Kind)
		}
	}
	if string(posToken(t, data[1])) != string(tokenOf(a3)) || string(posToken(t, data[2])) != string(tokenOf(b2)) {
		t.Errorf("a transaction's position is not its last event's token")
	}
	// The idle getMore after the last event gives a heartbeat there.
	hb := next(t, s, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for len(hb) == 0 || hb[len(hb)-1].Kind != event.KindHeartbeat {
		txn, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hb = append(hb, txn)
	}
	if p := posToken(t, hb[len(hb)-1]); string(p) != string(srv.log[7].raw.Lookup("_id").Document()) {
		t.Errorf("heartbeat at %x, want the last event's token", p)
	}
	for _, txn := range got {
		if txn.Kind == event.KindHeartbeat {
			t.Errorf("heartbeat %s while events were flowing", txn.Pos)
		}
	}
}

// TestStreamIdleFlushesTransaction: a transaction whose last event ends a
// batch is emitted when the next getMore is empty, not held.
func TestStreamIdleFlushesTransaction(t *testing.T) {
	srv := &fakeServer{}
	srv.log = []step{ev(t, "insert", "app.a", 1, lsidA+"/1", ""), ev(t, "insert", "app.a", 2, lsidA+"/1", ""), idle()}
	s := start(t, srv, Position{}, "")
	if g := ids(t, dataTxns(next(t, s, 1))[0]); g != "insert:app.a1 insert:app.a2" {
		t.Errorf("got %s", g)
	}
}

// TestStreamResume: reopening at any Txn's position continues with the
// next Txn, nothing lost or repeated; reopening at a token inside a
// transaction (as the driver's own resume after a network error may do)
// continues with the rest of that transaction.
func TestStreamResume(t *testing.T) {
	srv := &fakeServer{}
	srv.log = []step{
		ev(t, "insert", "app.a", 1, "", ""),
		ev(t, "insert", "app.a", 2, lsidA+"/5", ""), ev(t, "insert", "app.a", 3, lsidA+"/5", ""), ev(t, "insert", "app.a", 4, lsidA+"/5", ""),
		ev(t, "update", "app.a", 1, "", ""),
		ev(t, "delete", "app.a", 2, lsidB+"/1", ""), ev(t, "delete", "app.a", 3, lsidB+"/1", ""),
		idle(),
	}
	all := dataTxns(next(t, start(t, srv, Position{}, ""), 4))
	var seq []string
	for _, txn := range all {
		seq = append(seq, ids(t, txn))
	}
	for i := range all {
		p, err := DecodePosition(all[i].Pos)
		if err != nil {
			t.Fatal(err)
		}
		rest := len(all) - i - 1
		if rest == 0 {
			continue
		}
		got := dataTxns(next(t, start(t, srv, p, ""), rest))
		for j, txn := range got {
			if g := ids(t, txn); g != seq[i+1+j] {
				t.Errorf("resumed after Txn %d: Txn %d is %s, want %s", i, j, g, seq[i+1+j])
			}
		}
	}
	// A token inside the first transaction: the rest of it follows whole.
	mid := Position{Token: tokenOf(srv.log[2])}
	got := dataTxns(next(t, start(t, srv, mid, ""), 1))
	if g := ids(t, got[0]); g != "insert:app.a4" {
		t.Errorf("resumed inside a transaction: %s, want insert:app.a4", g)
	}
}

// TestStreamDropAndInvalidate: a collection-scope stream sees drop then
// invalidate; the drop is a DDL barrier, the invalidate a position with
// start_after, and the source reopens with startAfter that token.
func TestStreamDropAndInvalidate(t *testing.T) {
	srv := &fakeServer{}
	drop := fixture(t, "drop")[0]
	inval := fixture(t, "invalidate")[0]
	srv.log = []step{ev(t, "insert", "app.orders", 1, "", ""), {raw: drop}, {raw: inval}, ev(t, "insert", "app.orders", 2, "", ""), idle()}
	s := start(t, srv, Position{}, "")
	got := next(t, s, 3)
	data := dataTxns(got)
	if data[1].Kind != event.KindDDL || data[1].DDL.Statement != `{"drop":"orders"}` || data[1].DDL.Schema != "app" || !data[1].IsBarrier() {
		t.Errorf("drop: %+v", data[1])
	}
	if g := ids(t, data[2]); g != "insert:app.orders2" {
		t.Errorf("after invalidate: %s", g)
	}
	var invalPos Position
	for _, txn := range got {
		if p, _ := DecodePosition(txn.Pos); p.StartAfter {
			invalPos = p
		}
	}
	if string(invalPos.Token) != string(inval.Lookup("_id").Document()) {
		t.Errorf("no heartbeat at the invalidate token with start_after")
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.opened) != 2 || !srv.opened[1].StartAfter || string(srv.opened[1].Token) != string(invalPos.Token) {
		t.Errorf("streams opened at %+v; want a second one startAfter the invalidate", srv.opened)
	}
}

// TestStreamLoopGuard: a transaction carrying an origin marker gets that
// origin; the marker itself is not data; others get the source's site.
func TestStreamLoopGuard(t *testing.T) {
	srv := &fakeServer{}
	txn := fixture(t, "txn")
	srv.log = []step{{raw: txn[0]}, {raw: txn[1]}, {raw: txn[2]}, {raw: txn[3]}, idle()}
	s := start(t, srv, Position{}, "a")
	data := dataTxns(next(t, s, 2))
	if data[0].Origin != "b" || len(data[0].Changes) != 2 {
		t.Errorf("marked transaction: origin %q, %d changes", data[0].Origin, len(data[0].Changes))
	}
	if data[1].Origin != "a" || len(data[1].Changes) != 1 {
		t.Errorf("local transaction: origin %q, %d changes", data[1].Origin, len(data[1].Changes))
	}
}

// TestStreamErrors: a cursor error reaches Next through classify; an event
// that cannot be decoded stops the source with an error naming it.
func TestStreamErrors(t *testing.T) {
	srv := &fakeServer{log: []step{ev(t, "insert", "app.a", 1, "", ""), {fail: errors.New("connection reset")}}}
	s := start(t, srv, Position{}, "")
	next(t, s, 1)
	if _, err := s.Next(context.Background()); !retry.IsTransient(err) || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("cursor error: %v", err)
	}
	var bad bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(`{"_id":{"_data":"01"},"operationType":"shardCollection","ns":{"db":"app","coll":"a"}}`), false, &bad); err != nil {
		t.Fatal(err)
	}
	srv2 := &fakeServer{log: []step{{raw: bad}}}
	s2 := start(t, srv2, Position{}, "")
	if _, err := s2.Next(context.Background()); err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), `"shardCollection"`) {
		t.Errorf("undecodable event: %v", err)
	}
}

// TestStreamResumeAtInvalidate: a collection-scope stream sees its
// collection renamed (a rename barrier, then invalidate). A checkpoint
// taken at the invalidate's heartbeat resumes with startAfter (the server
// refuses resumeAfter an invalidate token) and continues with the next
// event, nothing lost; the rename barrier is not read again.
func TestStreamResumeAtInvalidate(t *testing.T) {
	srv := &fakeServer{}
	rename := fixture(t, "rename")[0]
	inval := fixture(t, "invalidate")[0]
	srv.log = []step{ev(t, "insert", "app.users", 1, "", ""), {raw: rename}, {raw: inval}, ev(t, "insert", "app.users", 2, "", ""), idle()}
	got := next(t, start(t, srv, Position{}, ""), 3)
	var at *event.Txn
	for _, txn := range got {
		if p, _ := DecodePosition(txn.Pos); p.StartAfter {
			at = txn
		}
	}
	if at == nil || at.Kind != event.KindHeartbeat {
		t.Fatalf("no heartbeat at the invalidate among %d Txns", len(got))
	}
	if d := dataTxns(got); d[1].Kind != event.KindDDL || d[1].DDL.Statement != `{"renameCollection":"app.users","to":"archive.users2023"}` {
		t.Fatalf("rename: %+v", d[1])
	}
	p, err := DecodePosition(at.Pos)
	if err != nil {
		t.Fatal(err)
	}
	after := dataTxns(next(t, start(t, srv, p, ""), 1))
	if g := ids(t, after[0]); g != "insert:app.users2" {
		t.Errorf("resumed at the invalidate: %s, want insert:app.users2", g)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if last := srv.opened[len(srv.opened)-1]; !last.StartAfter || string(last.Token) != string(inval.Lookup("_id").Document()) {
		t.Errorf("resumed with %+v, want startAfter the invalidate token", last)
	}
}
