package mysql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/test/harness"
)

func insertedID(t *testing.T, txn *event.Txn) int32 {
	t.Helper()
	if txn.Kind != event.KindDML || len(txn.Changes) != 1 {
		t.Fatalf("want one insert, got %s", describe(txn))
	}
	return txn.Changes[0].After[0].(int32)
}

func TestResume(t *testing.T) {
	srv := sharedServer(t)
	execIn(t, srv, "", "CREATE DATABASE rs", "CREATE TABLE rs.t (id INT PRIMARY KEY)")
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"rs.*"}
	first := openReader(t, cfg, nil)
	for i := 1; i <= 5; i++ {
		execIn(t, srv, "rs", fmt.Sprintf("INSERT INTO t VALUES (%d)", i))
	}
	var txns []*event.Txn
	for i := 1; i <= 2; i++ {
		txn := next(t, first)
		if got := insertedID(t, txn); got != int32(i) {
			t.Fatalf("read id %d, want %d", got, i)
		}
		txns = append(txns, txn)
	}
	first.Close()
	checkpoint := mustDecode(t, txns[1].Pos)
	if checkpoint.GTID == "" || checkpoint.File == "" {
		t.Fatalf("checkpoint %s lacks gtid or file", checkpoint)
	}

	// The GTID read after resuming must be the same, whichever way we
	// resume, and so must every later position.
	var want []Position
	cases := []struct {
		name   string
		resume Position
	}{
		{"gtid", Position{GTID: checkpoint.GTID}},
		{"gtid with file", checkpoint},
		{"file:pos", Position{File: checkpoint.File, Pos: checkpoint.Pos}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := cfg
			cfg.ServerID = replicaID()
			cfg.Start = "earliest" // resume must win
			r := openReader(t, cfg, EncodePosition(c.resume))
			var got []Position
			for i := 3; i <= 5; i++ {
				txn := next(t, r)
				if id := insertedID(t, txn); id != int32(i) {
					t.Fatalf("after resume read id %d, want %d (duplicate or gap)", id, i)
				}
				got = append(got, mustDecode(t, txn.Pos))
			}
			if want == nil {
				want = got
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("position %d = %s, want %s", i, got[i], want[i])
				}
				if got[i].GTID == "" {
					t.Errorf("position %d carries no GTID after a %s resume", i, c.name)
				}
			}
		})
	}

	t.Run("start at file:pos", func(t *testing.T) {
		cfg := cfg
		cfg.ServerID = replicaID()
		cfg.Start = fmt.Sprintf("%s:%d", checkpoint.File, checkpoint.Pos)
		r := openReader(t, cfg, nil)
		if id := insertedID(t, next(t, r)); id != 3 {
			t.Fatalf("read id %d, want 3", id)
		}
	})
	t.Run("start at gtid", func(t *testing.T) {
		cfg := cfg
		cfg.ServerID = replicaID()
		cfg.Start = checkpoint.GTID
		r := openReader(t, cfg, nil)
		if id := insertedID(t, next(t, r)); id != 3 {
			t.Fatalf("read id %d, want 3", id)
		}
	})
}

func TestStartEarliest(t *testing.T) {
	srv := sharedServer(t)
	execIn(t, srv, "", "CREATE DATABASE er", "CREATE TABLE er.t (id INT PRIMARY KEY)", "INSERT INTO er.t VALUES (7)")
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"er.*"}
	cfg.Start = "earliest"
	r := openReader(t, cfg, nil)
	ddl := next(t, r)
	if ddl.Kind != event.KindDDL || ddl.DDL.Statement != "CREATE DATABASE er" {
		t.Fatalf("first forwarded txn from earliest: %s", describe(ddl))
	}
	if next(t, r).Kind != event.KindDDL {
		t.Fatal("CREATE TABLE not read")
	}
	ins := next(t, r)
	if id := insertedID(t, ins); id != 7 {
		t.Fatalf("id %d", id)
	}
	pos := mustDecode(t, ins.Pos)
	gtid, _ := srv.GTIDPos()
	if pos.GTID != gtid {
		t.Fatalf("position after last txn %s, server gtid_binlog_pos %s", pos, gtid)
	}
}

func TestHeartbeatsAndClose(t *testing.T) {
	srv := sharedServer(t)
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"nothing.*"}
	r := openReader(t, cfg, nil)
	opened := time.Now()
	txns := make(chan *event.Txn, 16)
	done := make(chan error, 1)
	go func() {
		for {
			txn, err := r.Next(context.Background())
			if err != nil {
				done <- err
				return
			}
			txns <- txn
		}
	}()

	// Idle: binlog heartbeats refresh LastContact but emit nothing, since
	// the position does not move.
	time.Sleep(2500 * time.Millisecond)
	if !r.LastContact().After(opened.Add(time.Second)) {
		t.Errorf("LastContact %v not refreshed by binlog heartbeats since %v", r.LastContact(), opened)
	}
	select {
	case txn := <-txns:
		t.Fatalf("idle source emitted %s", describe(txn))
	default:
	}

	// A rotation moves the position without a transaction: one Heartbeat
	// Txn carries the new file, at an offset a resume can use.
	// MariaDB may append a Binlog_checkpoint event to the new file a moment
	// after the rotation, so heartbeats are read until one matches the
	// master's status as it is then.
	srv.MustExec(t, "FLUSH BINARY LOGS")
	deadline := time.After(5 * time.Second)
	for matched := false; !matched; {
		select {
		case txn := <-txns:
			if txn.Kind != event.KindHeartbeat {
				t.Fatalf("after rotation got %s, want a heartbeat", describe(txn))
			}
			pos := mustDecode(t, txn.Pos)
			status := srv.MustQuery(t, "SHOW MASTER STATUS")
			if pos.File != status[0][0] {
				t.Fatalf("after rotation got %s, master status %v", describe(txn), status[0])
			}
			if strconv.Itoa(int(pos.Pos)) != status[0][1] {
				continue // an event after this one is still to come
			}
			gtid, _ := srv.GTIDPos()
			if pos.GTID != gtid {
				t.Fatalf("heartbeat gtid %q, server %q", pos.GTID, gtid)
			}
			matched = true
		case <-deadline:
			t.Fatalf("no heartbeat Txn at the master's position within 5s of a binlog rotation; master status %v",
				srv.MustQuery(t, "SHOW MASTER STATUS"))
		}
	}

	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next still blocked 10s after Close")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConnectionLossIsTransient(t *testing.T) {
	srv := sharedServer(t)
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"nothing.*"}
	r := openReader(t, cfg, nil)
	// Kill every dump thread; readers of other tests are closed already.
	var rows [][]string
	err := harness.WaitFor(context.Background(), 10*time.Second, func() (bool, error) {
		var err error
		rows, err = srv.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
		return err == nil && len(rows) > 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		_ = srv.Exec("KILL " + row[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, err := r.Next(ctx)
		if err == nil {
			continue
		}
		if !retry.IsTransient(err) {
			t.Fatalf("connection loss gave a fatal error: %v", err)
		}
		return
	}
}

func TestPurgedPositionIsFatal(t *testing.T) {
	srv := harness.MariaDB(t, harness.Options{ServerID: 5})
	srv.MustExec(t, "CREATE DATABASE p", "CREATE TABLE p.t (id INT PRIMARY KEY)", "INSERT INTO p.t VALUES (1)")
	old, err := srv.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	srv.MustExec(t, "INSERT INTO p.t VALUES (2)", "FLUSH BINARY LOGS", "INSERT INTO p.t VALUES (3)", "FLUSH BINARY LOGS")
	rows := srv.MustQuery(t, "SHOW BINARY LOGS")
	newest := rows[len(rows)-1][0]
	srv.MustExec(t, "PURGE BINARY LOGS TO '"+newest+"'")

	for _, c := range []struct {
		name   string
		start  string
		resume event.Position
	}{
		{"resume", "", EncodePosition(Position{GTID: old})},
		{"start gtid", old, nil},
		{"start file:pos", rows[0][0] + ":4", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig(t, srv)
			cfg.Start = c.start
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := Open(ctx, cfg, c.resume)
			if err == nil {
				defer r.Close()
				for err == nil {
					_, err = r.Next(ctx)
				}
			}
			if !errors.Is(err, ErrPositionPurged) || retry.IsTransient(err) {
				t.Fatalf("got %v (transient %v), want the fatal purged error", err, retry.IsTransient(err))
			}
			if !strings.Contains(err.Error(), "purged") || !strings.Contains(err.Error(), "fix: set source.start to snapshot") {
				t.Fatalf("message: %v", err)
			}
			t.Logf("error: %v", err)
		})
	}
}
