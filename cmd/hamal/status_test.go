package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/admin"
	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

// serveChannel serves the admin API of a real, not started channel.
func serveChannel(t *testing.T, name string) string {
	t.Helper()
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Save(name, checkpoint.Checkpoint{Pos: event.Position(`{"gtid":"0-1-` + name + `"}`)}); err != nil {
		t.Fatal(err)
	}
	never := errors.New("not started")
	ch, err := pipeline.New(pipeline.Options{Name: name, Store: store, Registerer: prometheus.NewRegistry(),
		OpenSource: func(context.Context, event.Position) (source.Source, error) { return nil, never },
		OpenSink:   func(context.Context) (sink.Sink, error) { return nil, never }})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := admin.Listen("127.0.0.1:0", admin.Handler(ch, prometheus.NewRegistry()), admin.ServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr
}

// TestStatusOfSeveralChannels asks two running admin APIs and one that is
// down, by address and by a directory of configs, as a table and as JSON.
func TestStatusOfSeveralChannels(t *testing.T) {
	a, b := serveChannel(t, "shard1"), serveChannel(t, "shard2")
	const down = "127.0.0.1:1"
	dir := t.TempDir()
	for name, listen := range map[string]string{"shard1": a, "shard2": b, "shard3": down} {
		// The configs need not validate: status reads admin.listen only
		// (their passwords may be unreadable to the operator).
		text := fmt.Sprintf("name: %s\nsource: {kind: mysql, password_file: /nonexistent}\nadmin: {listen: %q}\n", name, listen)
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a config"), 0o644)

	for _, args := range [][]string{
		{"status", "--addr", a, "--addr", b + "," + down},
		{"status", "--dir", dir},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 1 {
				t.Errorf("exit %d with one channel down, want 1; stderr %s", code, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if len(lines) != 4 || !strings.HasPrefix(lines[0], "CHANNEL") {
				t.Fatalf("table:\n%s", stdout.String())
			}
			for i, want := range [][]string{{"shard1", a, "starting"}, {"shard2", b, "starting"}, {"-", down, "unreachable", "cannot reach"}} {
				for _, w := range want {
					if !strings.Contains(lines[i+1], w) {
						t.Errorf("line %q lacks %q", lines[i+1], w)
					}
				}
			}

			stdout.Reset()
			run(append(args, "--json"), &stdout, &stderr)
			var got []channelStatus
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("--json: %v\n%s", err, stdout.String())
			}
			if len(got) != 3 || got[0].Status == nil || got[0].Status.Name != "shard1" || got[0].Status.CheckpointPosition != `{"gtid":"0-1-shard1"}` ||
				got[1].Status == nil || got[1].Status.Name != "shard2" || got[2].Status != nil || got[2].Addr != down || got[2].Error == "" {
				t.Errorf("--json = %s", stdout.String())
			}
		})
	}

	// One channel keeps the detailed view and the plain status object.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"status", "--addr", a, "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var one pipeline.Status
	if err := json.Unmarshal(stdout.Bytes(), &one); err != nil || one.Name != "shard1" {
		t.Errorf("single --json = %s (%v)", stdout.String(), err)
	}
	stdout.Reset()
	run([]string{"status", "--config", filepath.Join(dir, "shard2.yaml")}, &stdout, &stderr)
	if !strings.Contains(stdout.String(), "channel:") || !strings.Contains(stdout.String(), "shard2") {
		t.Errorf("single view:\n%s", stdout.String())
	}
}

// TestPrintStatusSnapshot: hamal status shows a channel's snapshot phase:
// the totals with rate and ETA while copying, the hand-off position, one
// line per table; the time it took once done.
func TestPrintStatusSnapshot(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name string
		snap pipeline.SnapshotStatus
		want []string
	}{
		{"copying", pipeline.SnapshotStatus{State: "copying", Position: `gtid "0-1-7"`, TablesTotal: 2, TablesDone: 1,
			RowsCopied: 1500, RowsEstimated: 3000, RowsPerSecond: 250, ETASeconds: 6, StartedAt: start,
			Tables: []pipeline.SnapshotTable{{Table: "app.a", RowsCopied: 1000, RowsEstimated: 1000, Done: true}, {Table: "app.b", RowsCopied: 500, RowsEstimated: 2000}}},
			[]string{"snapshot:            copying: 1/2 tables, 1500 of ~3000 rows, 250 rows/s, ETA 6s",
				`snapshot position:   gtid "0-1-7" (the stream starts here)`,
				"  app.a:             1000 of ~1000 rows, done", "  app.b:             500 of ~2000 rows, copying"}},
		{"done", pipeline.SnapshotStatus{State: "done", Position: `gtid "0-1-7"`, TablesTotal: 1, TablesDone: 1, RowsCopied: 10, RowsEstimated: 10,
			StartedAt: start, FinishedAt: start.Add(1500 * time.Millisecond)},
			[]string{"snapshot:            done: 1/1 tables, 10 of ~10 rows, took 1.5s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			printStatus(&out, pipeline.Status{Name: "c", State: pipeline.StateSnapshot, Snapshot: &c.snap})
			for _, w := range c.want {
				if !strings.Contains(out.String(), w+"\n") {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
