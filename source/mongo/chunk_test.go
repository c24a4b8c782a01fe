package mongo

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	"github.com/hamal-replication/hamal/retry"
)

func startChunked(t *testing.T, srv *fakeServer, from Position, site string, chunk int) *Source {
	t.Helper()
	s := newSource(Config{Site: site, ChunkChanges: chunk}, srv.open, nil, func(err error) error { return retry.Transient(err) }, from)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStreamChunksHugeTransaction: a transaction of 25 changes with a
// chunk size of 10 arrives as two Partial Txns of 10 positioned before the
// transaction (at the Txn emitted before it) and a last one of 5 at its
// last event; the origin of its marker (its first write) is on every
// chunk; a resume from a chunk's position replays the transaction whole;
// a transaction at the very start of a stream opened without a position
// gets its cluster time as the chunks' position.
func TestStreamChunksHugeTransaction(t *testing.T) {
	srv := &fakeServer{}
	lsid := lsidB + "/7"
	before := ev(t, "insert", "app.a", 100, "", "")
	marker := ev(t, "replace", "hamal.origin_marker", 1, lsid, `,"origin":"b","path":"b,a"`)
	srv.log = []step{before, marker}
	for i := 0; i < 25; i++ {
		srv.log = append(srv.log, ev(t, "insert", "app.a", i, lsid, ""))
	}
	after := ev(t, "insert", "app.a", 200, "", "")
	srv.log = append(srv.log, after, idle())

	check := func(t *testing.T, data []*event.Txn, wantChunkPos []byte) {
		t.Helper()
		var sizes []int
		var ids []string
		for _, txn := range data {
			sizes = append(sizes, len(txn.Changes))
			for _, c := range txn.Changes {
				ids = append(ids, fmt.Sprint(docID(t, c)))
			}
			if txn.Origin != "b" || !slices.Equal(txn.Path, []string{"b", "a"}) {
				t.Errorf("chunk origin %q path %v, want b [b a] from the marker", txn.Origin, txn.Path)
			}
		}
		if !slices.Equal(sizes, []int{10, 10, 5}) {
			t.Fatalf("chunk sizes %v, want [10 10 5]", sizes)
		}
		for i, id := range ids {
			if id != fmt.Sprint(i) {
				t.Fatalf("changes out of order: %v", ids)
			}
		}
		for i, txn := range data {
			if got, want := txn.Partial, i < 2; got != want {
				t.Errorf("chunk %d: Partial %v, want %v", i, got, want)
			}
		}
		if p := posToken(t, data[0]); string(p) != string(wantChunkPos) || string(posToken(t, data[1])) != string(wantChunkPos) {
			t.Errorf("chunk position %x, want the token before the transaction %x", p, wantChunkPos)
		}
		if string(posToken(t, data[2])) != string(tokenOf(srv.log[len(srv.log)-3])) {
			t.Errorf("last chunk not at the transaction's last event")
		}
	}

	got := dataTxns(next(t, startChunked(t, srv, Position{}, "a", 10), 5))
	if ids(t, got[0]) != "insert:app.a100" || ids(t, got[4]) != "insert:app.a200" {
		t.Fatalf("neighbours: %s / %s", ids(t, got[0]), ids(t, got[4]))
	}
	if got[0].Origin != "a" || got[4].Origin != "a" {
		t.Errorf("local Txns: origin %q %q", got[0].Origin, got[4].Origin)
	}
	check(t, got[1:4], tokenOf(before))

	// A checkpoint at a chunk resumes before the transaction: it is read
	// again whole, in the same chunks.
	p, err := DecodePosition(got[1].Pos)
	if err != nil {
		t.Fatal(err)
	}
	again := dataTxns(next(t, startChunked(t, srv, p, "a", 10), 4))
	check(t, again[:3], tokenOf(before))
	if ids(t, again[3]) != "insert:app.a200" {
		t.Errorf("after the replayed transaction: %s", ids(t, again[3]))
	}

	// Without any position before it, the chunks carry the transaction's
	// cluster time (startAtOperationTime replays it whole).
	srv2 := &fakeServer{log: append([]step{marker}, srv.log[2:]...)}
	first := dataTxns(next(t, startChunked(t, srv2, Position{}, "a", 10), 1))[0]
	cp, err := DecodePosition(first.Pos)
	if err != nil || !first.Partial || len(cp.Token) != 0 || cp.ClusterTime != FormatClusterTime(mustEvent(t, srv2.log[0]).ClusterTime) {
		t.Errorf("first chunk at %s (%v), want the transaction's cluster time", first.Pos, err)
	}
}

func docID(t *testing.T, c event.Change) int32 {
	t.Helper()
	if c.Op == event.OpDelete {
		return docOf(t, c.Before[0]).Lookup("_id").Int32()
	}
	return docOf(t, c.After[0]).Lookup("_id").Int32()
}

func mustEvent(t *testing.T, s step) Event {
	t.Helper()
	e, err := Decode(s.raw)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestStreamLoopGuardDropsEcho: the events of a transaction a MongoDB sink
// applied at site a for a Txn from site b (the marker replaced first,
// carrying origin b and path b,a, as sink/mongo writes it) become one Txn
// with that origin and path, which the loop guard of the channel a → b
// drops; the transaction written locally at a right after it is forwarded.
// The older marker shape without a path (txn.json) is dropped too.
func TestStreamLoopGuardDropsEcho(t *testing.T) {
	for _, name := range []string{"txn_marker", "txn"} {
		t.Run(name, func(t *testing.T) {
			srv := &fakeServer{}
			for _, raw := range fixture(t, name) {
				srv.log = append(srv.log, step{raw: raw})
			}
			srv.log = append(srv.log, idle())
			data := dataTxns(next(t, start(t, srv, Position{}, "a"), 2))
			g, err := loopguard.New("a", "b")
			if err != nil {
				t.Fatal(err)
			}
			echo, local := data[0], data[1]
			if echo.Origin != "b" || len(echo.Changes) != 2 {
				t.Fatalf("marked transaction: origin %q, %d changes", echo.Origin, len(echo.Changes))
			}
			if g.Admit(echo) {
				t.Errorf("the channel a → b forwards a transaction that came from b (path %v)", echo.Path)
			}
			if !g.Admit(local) || !slices.Equal(local.Path, []string{"a", "b"}) {
				t.Errorf("local transaction: not forwarded, or path %v", local.Path)
			}
			// A relay channel a → c forwards the echo with its path kept.
			relay, _ := loopguard.New("a", "c")
			fresh := *data[0]
			fresh.Path = slices.Clone(data[0].Path)
			if !relay.Admit(&fresh) || fresh.Origin != "b" || fresh.Path[len(fresh.Path)-1] != "c" {
				t.Errorf("relay a → c: origin %q path %v", fresh.Origin, fresh.Path)
			}
		})
	}
}
