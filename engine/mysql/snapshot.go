package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/snapshot"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// StartSnapshot is the source.start value that begins a new channel with
// a copy of the source's tables (package snapshot).
const StartSnapshot = "snapshot"

// SnapshotCopy tunes the copy of source.start: snapshot (source.snapshot).
type SnapshotCopy struct {
	// Workers is how many key ranges are copied at once (default 4).
	Workers int `yaml:"workers"`
	// ChunkRows is the most rows one chunk reads and writes, one target
	// transaction (default 10,000).
	ChunkRows int `yaml:"chunk_rows"`
}

// Defaults of source.snapshot.
const (
	DefaultSnapshotWorkers   = 4
	DefaultSnapshotChunkRows = 10_000
)

// validateSnapshot normalizes start: snapshot and checks source.snapshot.
func (c *SourceConfig) validateSnapshot(s *config.Scope) {
	if strings.EqualFold(strings.TrimSpace(c.Start), StartSnapshot) {
		c.Start = StartSnapshot
	}
	sc, key := &c.Snapshot, s.Sub("snapshot")
	if sc.Workers == 0 {
		sc.Workers = DefaultSnapshotWorkers
	}
	if sc.ChunkRows == 0 {
		sc.ChunkRows = DefaultSnapshotChunkRows
	}
	if sc.Workers < 1 || sc.Workers > 64 {
		s.Bad("%s: %d is out of range 1..64", key.Key("workers"), sc.Workers)
	}
	if sc.ChunkRows < 100 || sc.ChunkRows > 1_000_000 {
		s.Bad("%s: %d is out of range 100..1000000", key.Key("chunk_rows"), sc.ChunkRows)
	}
}

// Pair implements config.Pairer: start: snapshot copies into a MySQL
// sink, and cannot run beside a relay, which would read the source before
// the copy's position is known.
func (c *SourceConfig) Pair(cfg *config.Config, s *config.Scope) {
	if c.Start != StartSnapshot {
		return
	}
	if _, ok := cfg.Sink.Engine.(*SinkConfig); !ok {
		s.Bad("%s: snapshot copies the tables into a MySQL/MariaDB target, and sink.kind is %s: seed that target yourself and start from a position (README: Start from a dump)",
			s.Key("start"), cfg.Sink.Kind)
	}
	if cfg.Relay != nil {
		s.Bad("%s: snapshot and relay cannot start together: the relay would read the source before the snapshot's position is known; start without relay, and add it once the snapshot is done (hamal status shows it)",
			s.Key("start"))
	}
}

// Pair implements config.Pairer: create_tables belongs to a snapshot.
func (c *SinkConfig) Pair(cfg *config.Config, s *config.Scope) {
	if c.CreateTables == nil {
		return
	}
	if src, ok := cfg.Source.Engine.(*SourceConfig); !ok || src.Start != StartSnapshot {
		s.Bad("%s: only source.start: snapshot creates target tables; remove the key, or start the channel with a snapshot", s.Key("create_tables"))
	}
}

// createTables is sink.create_tables with its default under a snapshot.
func (c *SinkConfig) createTables() bool { return c.CreateTables == nil || *c.CreateTables }

// Seeds implements engine.Seeding.
func (c *SourceConfig) Seeds() bool { return c.Start == StartSnapshot }

// Seeder implements engine.Seeding: the snapshot phase of start: snapshot.
func (c *SourceConfig) Seeder(env engine.Env, sink engine.SinkConfig, sinkEnv engine.Env, store *checkpoint.Store) (pipeline.Seeder, error) {
	if !c.Seeds() {
		return nil, nil
	}
	sc, err := c.snapshotConfig(env, sink, sinkEnv)
	if err != nil {
		return nil, err
	}
	sc.Store = store
	return snapshot.New(sc)
}

// CheckSeed implements engine.Seeding: what the snapshot would refuse
// (tables without a key, target tables with another definition or rows,
// missing tables with create_tables off) and what it would create.
func (c *SourceConfig) CheckSeed(ctx context.Context, env engine.Env, sink engine.SinkConfig, sinkEnv engine.Env, r *engine.Report) {
	sc, err := c.snapshotConfig(env, sink, sinkEnv)
	if err != nil {
		r.Fail(err.Error(), "fix the source and sink blocks")
		return
	}
	tables := make([]srcmysql.TableInfo, len(r.Tables))
	for i, t := range r.Tables {
		tables[i] = srcmysql.TableInfo{Schema: t.Schema, Name: t.Name, Columns: t.Columns, HasKey: t.HasKey}
	}
	rep, err := snapshot.Check(ctx, sc, tables)
	if err != nil {
		r.Fail(fmt.Sprintf("snapshot: %v", err), "check that source and target answer (see above)")
		return
	}
	for _, p := range rep.Problems {
		r.Fail("snapshot: "+p.What, p.Fix)
	}
	if len(rep.Problems) == 0 {
		r.OK("snapshot: %d tables to copy; creates %d missing on the target%s", rep.Tables, len(rep.Create), listed(rep.Create))
	}
}

func listed(names []string) string {
	if len(names) == 0 {
		return ""
	}
	if len(names) > 5 {
		return fmt.Sprintf(" (%s, …)", strings.Join(names[:5], ", "))
	}
	return " (" + strings.Join(names, ", ") + ")"
}

// snapshotConfig is the snapshot's configuration from the two blocks.
func (c *SourceConfig) snapshotConfig(env engine.Env, sink engine.SinkConfig, sinkEnv engine.Env) (snapshot.Config, error) {
	snk, ok := sink.(*SinkConfig)
	if !ok {
		return snapshot.Config{}, fmt.Errorf("source.start: snapshot needs a MySQL/MariaDB sink, not %T", sink)
	}
	rc, err := c.ReaderConfig(env)
	if err != nil {
		return snapshot.Config{}, err
	}
	var path []string
	if env.Site != "" && sinkEnv.Site != "" {
		// The loop guard's path of rows read at the source's site and
		// applied at the sink's, as the guard stamps the stream's.
		path = []string{env.Site, sinkEnv.Site}
	}
	return snapshot.Config{Channel: env.Channel, Source: rc, CreateTables: snk.createTables(),
		Workers: c.Snapshot.Workers, ChunkRows: c.Snapshot.ChunkRows, Path: path, Logger: env.Logger,
		Target: func(ctx context.Context) (*client.Conn, error) { return snk.Conn.Connect(ctx) }}, nil
}

// checkStart reports a start key the source cannot serve (hamal check):
// a GTID ahead, purged or in a domain the source lacks, a file:pos beyond
// the end.
func (c *SourceConfig) checkStart(ctx context.Context, rc srcmysql.Config, r *engine.Report) {
	problems, err := srcmysql.CheckStart(ctx, rc)
	if err != nil {
		r.Fail(fmt.Sprintf("source.start %s: %v", c.Start, err), "check that the source answers (see above)")
		r.StartRefused = true
		return
	}
	for _, p := range problems {
		r.Fail("source: "+p.What, p.Fix)
		r.StartRefused = true
	}
}
