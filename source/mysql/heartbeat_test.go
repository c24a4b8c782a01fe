package mysql

import (
	"context"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// TestHeartbeatRoundTrip runs the writer against a real source and reads
// its rows back through the binlog: they arrive as Heartbeat Txns that
// carry the written time and no changes, while application rows between
// them still arrive as data.
func TestHeartbeatRoundTrip(t *testing.T) {
	srv := sharedServer(t)
	execIn(t, srv, "", "CREATE DATABASE IF NOT EXISTS hbapp", "CREATE TABLE IF NOT EXISTS hbapp.t (id INT PRIMARY KEY, v INT)")
	cfg := baseConfig(t, srv)
	r := openReader(t, cfg, nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewHeartbeatWriter(cfg, 20*time.Millisecond).Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("heartbeat writer: %v", err)
			}
		}
	}
	defer stop()

	var beats []time.Time
	sawRow := false
	for len(beats) < 5 || !sawRow {
		txn := nextAny(t, r)
		if !txn.Heartbeat.IsZero() {
			if txn.Kind != event.KindHeartbeat || len(txn.Changes) != 0 {
				t.Fatalf("heartbeat row forwarded as data: %s", describe(txn))
			}
			if n := len(beats); n > 0 && !txn.Heartbeat.After(beats[n-1]) {
				t.Fatalf("heartbeat %s is not after the previous %s", txn.Heartbeat, beats[n-1])
			}
			beats = append(beats, txn.Heartbeat)
			if len(beats) == 2 {
				execIn(t, srv, "", "INSERT INTO hbapp.t VALUES (1, 1)")
			}
			continue
		}
		if txn.Kind == event.KindDML {
			if len(txn.Changes) != 1 || txn.Changes[0].Namespace != "hbapp.t" {
				t.Fatalf("unexpected data Txn: %s", describe(txn))
			}
			sawRow = true
		}
	}

	// The last heartbeat read back is exactly what the table holds once the
	// writer has stopped and the reader has caught up.
	stop()
	rows := srv.MustQuery(t, "SELECT DATE_FORMAT(CONVERT_TZ(ts, @@session.time_zone, '+00:00'), '%Y-%m-%d %H:%i:%s.%f') FROM hamal.heartbeat WHERE server_id = @@server_id")
	if len(rows) != 1 {
		t.Fatalf("hamal.heartbeat holds %d rows for the source's server_id, want 1", len(rows))
	}
	want, ok := parseHeartbeatTime(rows[0][0])
	if !ok {
		t.Fatalf("cannot parse %q", rows[0][0])
	}
	last := beats[len(beats)-1]
	for !last.Equal(want) {
		txn := nextAny(t, r)
		if !txn.Heartbeat.IsZero() {
			last = txn.Heartbeat
		}
		if last.After(want) {
			t.Fatalf("read heartbeat %s after the final one %s", last, want)
		}
	}
}

func TestParseHeartbeatTime(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want time.Time
		ok   bool
	}{
		{"2026-11-24 06:10:58.123456", time.Date(2026, 11, 24, 6, 10, 58, 123456000, time.UTC), true},
		{[]byte("2026-11-24 06:10:58"), time.Date(2026, 11, 24, 6, 10, 58, 0, time.UTC), true},
		{"not a time", time.Time{}, false},
		{int64(5), time.Time{}, false},
	} {
		got, ok := parseHeartbeatTime(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseHeartbeatTime(%v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
