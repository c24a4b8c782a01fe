package config

import "strings"

func init() {
	register("mysql", Kind{Source: validateMySQLSource, Sink: validateMySQLSink})
}

func validateMySQLSource(c *Config, bad func(string, ...any)) {
	checkAddr(bad, "source.addr", c.Source.Addr)
	if c.Source.User == "" {
		bad("source.user: required (a user with REPLICATION SLAVE, REPLICATION CLIENT and SELECT)")
	}
	if c.Source.ServerID == 0 {
		bad("source.server_id: required; pick an id no other server or replica of the source uses, e.g. 1001")
	}
	switch c.Source.Flavor {
	case "", "mysql", "mariadb":
	default:
		bad("source.flavor: %q is not one of mysql, mariadb (or leave it out to auto-detect)", c.Source.Flavor)
	}
	if c.Source.Start == "" {
		c.Source.Start = "current"
	}
	snap := &c.Source.Snapshot
	if strings.EqualFold(strings.TrimSpace(c.Source.Start), StartSnapshot) {
		c.Source.Start = StartSnapshot
		if c.Sink.Kind != "mysql" {
			bad("source.start: snapshot copies the tables into a MySQL/MariaDB target, and sink.kind is %s: seed that target yourself and start from a position", c.Sink.Kind)
		}
		if c.Relay != nil {
			bad("source.start: snapshot and relay: the relay would read the source before the snapshot position is known; start the channel without relay, and add it once the snapshot is done (hamal status shows the snapshot's state)")
		}
		if c.Sink.CreateTables == nil {
			on := true
			c.Sink.CreateTables = &on
		}
	} else if c.Sink.CreateTables != nil && c.Sink.Kind == "mysql" {
		bad("sink.create_tables: only source.start: snapshot creates target tables; remove it, or set source.start: snapshot")
	}
	if snap.Workers == 0 {
		snap.Workers = DefaultSnapshotWorkers
	}
	if snap.ChunkRows == 0 {
		snap.ChunkRows = DefaultSnapshotChunkRows
	}
	if snap.Workers < 1 || snap.Workers > 64 {
		bad("source.snapshot.workers: %d is out of range 1..64", snap.Workers)
	}
	if snap.ChunkRows < 100 || snap.ChunkRows > 1_000_000 {
		bad("source.snapshot.chunk_rows: %d is out of range 100..1000000", snap.ChunkRows)
	}
}

// StartSnapshot is the source.start value that begins a new channel with
// a copy of the source's tables (package snapshot).
const StartSnapshot = "snapshot"

// SnapshotCopy tunes the copy of source.start: snapshot.
type SnapshotCopy struct {
	// Workers is how many key ranges are copied at once.
	Workers int `yaml:"workers"`
	// ChunkRows is the most rows one chunk reads and writes (one target
	// transaction).
	ChunkRows int `yaml:"chunk_rows"`
}

// Defaults of source.snapshot.
const (
	DefaultSnapshotWorkers   = 4
	DefaultSnapshotChunkRows = 10_000
)

// CreateTablesOn reports sink.create_tables with its default.
func (s Sink) CreateTablesOn() bool { return s.CreateTables != nil && *s.CreateTables }

func validateMySQLSink(c *Config, bad func(string, ...any)) {
	checkAddr(bad, "sink.addr", c.Sink.Addr)
	if c.Sink.User == "" {
		bad("sink.user: required")
	}
}
