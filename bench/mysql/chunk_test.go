package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/source"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
	"github.com/hamal-replication/hamal/test/harness"
)

// TestHugeTransactionChunksReplayFromStart replicates one INSERT…SELECT of
// many rows through the whole pipeline with a small chunk size, stops the
// channel part-way, and checks guarantee 4 with guarantees 1 and 2: while
// the target holds only part of the transaction the checkpoint has not
// moved past its start, and a channel resumed from that checkpoint replays
// the transaction into a target equal to the source.
//
// The bench's memory section runs the same at 1M rows on the real binary
// and prints its peak RSS; HAMAL_BIG_TXN_ROWS sets the size here.
func TestHugeTransactionChunksReplayFromStart(t *testing.T) {
	rows := 20_000
	if testing.Short() {
		rows = 5_000
	}
	if v := os.Getenv("HAMAL_BIG_TXN_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("HAMAL_BIG_TXN_ROWS=%q: want a positive row count", v)
		}
		rows = n
	}
	src := harness.MariaDB(t, harness.Options{ServerID: 1})
	dst := harness.MariaDB(t, harness.Options{ServerID: 2})
	// Logged on the source, so the start position is a GTID and not
	// empty (which would mean "current").
	if err := execOne(src, "CREATE DATABASE bench", createTable("w2"), createTable("big")); err != nil {
		t.Fatal(err)
	}
	if err := execOne(dst, "SET sql_log_bin=0", "CREATE DATABASE bench", createTable("big")); err != nil {
		t.Fatal(err)
	}
	tsv := filepath.Join(t.TempDir(), "rows.tsv")
	if err := writeTSV(tsv, rows); err != nil {
		t.Fatal(err)
	}
	if err := loadData(src, "w2", tsv, false); err != nil {
		t.Fatal(err)
	}
	start, err := src.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Exec("INSERT INTO bench.big SELECT * FROM bench.w2"); err != nil {
		t.Fatal(err)
	}
	want, err := state(src, "big")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfg := benchSource(src.Addr, benchServerID, start)
	// One chunk per target transaction, one at a time, so that stopping
	// after three leaves the transaction part-applied. The chunk size is
	// the reader's own knob, below the driver's keys.
	oneByOne := func(o *pipeline.Options) {
		o.Workers, o.BatchTxns = 1, 1
		o.OpenSource = func(ctx context.Context, resume event.Position) (source.Source, error) {
			rc, err := cfg.ReaderConfig(engine.Env{Channel: o.Name, Logger: o.Logger})
			if err != nil {
				return nil, err
			}
			rc.ChunkRows = rows / 50
			return srcmysql.Open(ctx, rc, resume)
		}
	}
	h, err := openHamal(dir, cfg, dst.Addr, oneByOne)
	if err != nil {
		t.Fatal(err)
	}
	// Stop once a few chunks are applied.
	if err := h.waitApplied(3, 2*time.Minute); err != nil {
		st := h.ch.Status()
		h.halt()
		t.Fatalf("%v; status %+v", err, st)
	}
	// Paused workers apply nothing more, so the stop lands mid-way.
	h.ch.Pause()
	h.halt()
	part, err := state(dst, "big")
	if err != nil {
		t.Fatal(err)
	}
	store, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cp, ok, err := store.Load("bench")
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if part.Rows < want.Rows {
		// Part of the transaction is on the target: the checkpoint must
		// still name its start, or the rest would be lost on resume.
		if ok {
			pos, err := srcmysql.DecodePosition(cp.Pos)
			if err != nil {
				t.Fatal(err)
			}
			if gtidSeq(pos.GTID, 1) != gtidSeq(start, 1) {
				t.Fatalf("target holds %d of %d rows but the checkpoint is at %s, past the transaction's start %s",
					part.Rows, want.Rows, pos.GTID, start)
			}
		}
		t.Logf("stopped with %d of %d rows applied; checkpoint at the transaction's start", part.Rows, want.Rows)
	} else {
		t.Fatalf("the whole transaction (%d rows) was applied although the channel stopped after 3 of 50 chunks", want.Rows)
	}

	h, err = openHamal(dir, cfg, dst.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer h.halt()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got, err := state(dst, "big")
		if err != nil {
			t.Fatal(err)
		}
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after resume the target holds %d rows (checksum %s), want %d (checksum %s); channel: %+v",
				got.Rows, got.Checksum, want.Rows, want.Checksum, h.ch.Status())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
