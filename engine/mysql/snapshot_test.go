package mysql

import (
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/engine/kafka"
)

// TestSnapshotConfig: start: snapshot and its keys, their defaults, and
// what the pairing with the rest of the channel refuses.
func TestSnapshotConfig(t *testing.T) {
	base := strings.Replace(readmeExample, "start: current", "start: SNAPSHOT", 1)
	cases := []struct {
		name string
		edit func(string) string
		want string // "" = valid
	}{
		{"defaults", func(s string) string { return s }, ""},
		{"tuned", func(s string) string {
			return strings.Replace(s, `  tables: ["app.*"]`, "  tables: [\"app.*\"]\n  snapshot: {workers: 2, chunk_rows: 500}", 1)
		}, ""},
		{"create_tables off", func(s string) string {
			return strings.Replace(s, "  password: \"\"\napply", "  password: \"\"\n  create_tables: false\napply", 1)
		}, ""},
		{"workers out of range", func(s string) string {
			return strings.Replace(s, `  tables: ["app.*"]`, "  tables: [\"app.*\"]\n  snapshot: {workers: 99}", 1)
		}, "source.snapshot.workers: 99 is out of range 1..64"},
		{"chunk_rows out of range", func(s string) string {
			return strings.Replace(s, `  tables: ["app.*"]`, "  tables: [\"app.*\"]\n  snapshot: {chunk_rows: 5}", 1)
		}, "source.snapshot.chunk_rows: 5 is out of range 100..1000000"},
		{"with a relay", func(s string) string { return s + "relay:\n  dir: ./var/relay\n" },
			"source.start: snapshot and relay cannot start together"},
		{"create_tables without snapshot", func(s string) string {
			return strings.Replace(strings.Replace(s, "start: SNAPSHOT", "start: current", 1), "  password: \"\"\napply", "  password: \"\"\n  create_tables: true\napply", 1)
		}, "sink.create_tables: only source.start: snapshot creates target tables"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SRC_PASSWORD", "x")
			cfg, err := parse(c.edit(base))
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("error %v, want %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			src, snk := blocks(t, cfg)
			if src.Start != StartSnapshot || !src.Seeds() || src.StartsAt() != "source.start=snapshot" {
				t.Errorf("start %q, seeds %v", src.Start, src.Seeds())
			}
			if src.Snapshot.Workers < 1 || src.Snapshot.ChunkRows < 100 {
				t.Errorf("snapshot tuning %+v", src.Snapshot)
			}
			if wantCreate := c.name != "create_tables off"; snk.createTables() != wantCreate {
				t.Errorf("create_tables %v, want %v", snk.createTables(), wantCreate)
			}
		})
	}
	t.Run("needs a mysql sink", func(t *testing.T) {
		text := strings.Replace(base, "sink:\n  kind: mysql\n  addr: 127.0.0.1:23307\n  user: root\n  password: \"\"\n",
			"sink:\n  kind: kafka\n  kafka: {brokers: [\"127.0.0.1:9092\"], topic: t}\n", 1)
		t.Setenv("SRC_PASSWORD", "x")
		_, err := engine.NewRegistry(Driver, kafka.Driver).Parse([]byte(text))
		if err == nil || !strings.Contains(err.Error(), "source.start: snapshot copies the tables into a MySQL/MariaDB target, and sink.kind is kafka") {
			t.Fatalf("error %v", err)
		}
	})
}
