package mysql

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/event"
)

// TestHugeTransactionIsChunked checks guarantee 4 on the reader: a
// transaction larger than the chunk size arrives as Partial Txns in order,
// each carrying the position *before* the transaction (a checkpoint there
// replays it whole) and the origin its marker row named, then a last Txn
// with the position after it; together they hold every change once.
func TestHugeTransactionIsChunked(t *testing.T) {
	srv := sharedServer(t)
	execIn(t, srv, "",
		"CREATE DATABASE ck",
		"CREATE TABLE ck.t (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL)",
		"CREATE TABLE ck.other (id INT PRIMARY KEY)",
		"CREATE DATABASE ckhamal", // its own Hamal schema: other tests create hamal.origin_marker
		"CREATE TABLE ckhamal.origin_marker (worker INT PRIMARY KEY, origin VARCHAR(64) NOT NULL)",
	)
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"ck.*"}
	cfg.ChunkRows = 100
	cfg.HamalSchema = "ckhamal"
	r := openReader(t, cfg, nil)

	const rows = 1000
	var values strings.Builder
	for i := 1; i <= rows; i++ {
		if i > 1 {
			values.WriteByte(',')
		}
		fmt.Fprintf(&values, "(%d,'row %d padded to make several events')", i, i)
	}
	execIn(t, srv, "ck",
		"INSERT INTO t VALUES (0,'before')",
		"BEGIN",
		"REPLACE INTO ckhamal.origin_marker VALUES (7,'dc9')",
		"INSERT INTO t VALUES "+values.String(),
		"INSERT INTO other VALUES (1)",
		"COMMIT",
	)
	first := next(t, r)
	if first.Partial || len(first.Changes) != 1 {
		t.Fatalf("first Txn: %s", describe(first))
	}
	before := first.Pos

	var chunks []*event.Txn
	for {
		txn := nextAny(t, r)
		if txn.Kind == event.KindHeartbeat && len(chunks) == 0 {
			continue // position-only, before the transaction
		}
		chunks = append(chunks, txn)
		if !txn.Partial {
			break
		}
	}
	if len(chunks) < 3 {
		t.Fatalf("got %d Txns for a %d-row transaction with ChunkRows 100; want it split", len(chunks), rows)
	}
	var got []int64
	for i, c := range chunks {
		last := i == len(chunks)-1
		if c.Partial == last {
			t.Errorf("chunk %d of %d: Partial = %v", i+1, len(chunks), c.Partial)
		}
		if !last && !bytes.Equal(c.Pos, before) {
			t.Errorf("chunk %d: Pos %s, want the position before the transaction %s", i+1, c.Pos, before)
		}
		if last && bytes.Equal(c.Pos, before) {
			t.Errorf("last chunk: Pos %s did not move past the transaction", c.Pos)
		}
		if c.Origin != "dc9" {
			t.Errorf("chunk %d: Origin %q, want the marker's dc9 on every chunk", i+1, c.Origin)
		}
		if !last && len(c.Changes) < cfg.ChunkRows {
			t.Errorf("chunk %d: %d changes, below the chunk size %d", i+1, len(c.Changes), cfg.ChunkRows)
		}
		for _, ch := range c.Changes {
			if ch.Namespace == "ck.t" {
				got = append(got, int64(ch.After[0].(int32)))
			}
		}
	}
	if len(got) != rows {
		t.Fatalf("chunks hold %d inserts into ck.t, want %d", len(got), rows)
	}
	for i, id := range got {
		if id != int64(i+1) {
			t.Fatalf("insert %d has id %d: chunks out of order or duplicated", i, id)
		}
	}
	others := 0
	for _, c := range chunks {
		for _, ch := range c.Changes {
			if ch.Namespace == "ck.other" {
				others++
			}
		}
	}
	if others != 1 {
		t.Errorf("the transaction's last change (ck.other) arrived %d times, want once", others)
	}
	lastChunk := chunks[len(chunks)-1]
	if gtidSeq(t, mustDecode(t, lastChunk.Pos).GTID) != gtidSeq(t, mustDecode(t, before).GTID)+1 {
		t.Errorf("last chunk at %s, want the GTID after %s", lastChunk.Pos, before)
	}
}
