package mysql

import (
	"context"
	"fmt"
	"time"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/source"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// SourceConfig is the source block of kind mysql: Hamal reads the
// server's binlog as a replica.
type SourceConfig struct {
	Conn `yaml:",inline"`
	// ServerID is the replica server_id Hamal registers with; unique among
	// the source's replicas.
	ServerID uint32 `yaml:"server_id"`
	Flavor   string `yaml:"flavor"` // mysql | mariadb | "" (detect)
	// Start is where a channel without a checkpoint begins: snapshot (a
	// copy of the tables, then the stream from the copy's position) |
	// current | earliest | a GTID set (streaming starts after it) |
	// file:pos.
	Start   string   `yaml:"start"`
	Tables  []string `yaml:"tables"`  // include globs on schema.table; empty: all
	Exclude []string `yaml:"exclude"` // exclude globs, applied after Tables
	// HamalSchema is where the sink of the previous hop keeps its markers
	// (and where the heartbeat writer writes).
	HamalSchema string    `yaml:"hamal_schema"`
	Heartbeat   Heartbeat `yaml:"heartbeat"`
	// Snapshot tunes the copy of start: snapshot (snapshot.go).
	Snapshot SnapshotCopy `yaml:"snapshot"`
}

// Heartbeat configures the source heartbeat: Hamal writes
// <hamal_schema>.heartbeat on the source every Interval, so lag is
// measured also while the source is idle (docs/metrics.md).
type Heartbeat struct {
	Enabled  bool          `yaml:"enabled"`
	Interval time.Duration `yaml:"interval"`
}

// DefaultHeartbeatInterval is heartbeat.interval's default.
const DefaultHeartbeatInterval = time.Second

var (
	_ engine.SourceConfig = (*SourceConfig)(nil)
	_ engine.Sidecar      = (*SourceConfig)(nil)
	_ engine.Seeding      = (*SourceConfig)(nil)
	_ config.Pairer       = (*SourceConfig)(nil)
	_ config.Redactor     = (*SourceConfig)(nil)
)

// Validate implements config.Block.
func (c *SourceConfig) Validate(s *config.Scope) {
	c.Conn.validate(s, " (a user with REPLICATION SLAVE, REPLICATION CLIENT and SELECT)")
	if c.ServerID == 0 {
		s.Bad("%s: required; pick an id no other server or replica of the source uses, e.g. 1001", s.Key("server_id"))
	}
	switch c.Flavor {
	case "", srcmysql.FlavorMySQL, srcmysql.FlavorMariaDB:
	default:
		s.Bad("%s: %q is not one of mysql, mariadb (or leave it out to auto-detect)", s.Key("flavor"), c.Flavor)
	}
	if c.Start == "" {
		c.Start = "current"
	}
	c.validateSnapshot(s)
	s.Globs("tables", c.Tables)
	s.Globs("exclude", c.Exclude)
	if hb := &c.Heartbeat; hb.Enabled {
		if hb.Interval == 0 {
			hb.Interval = DefaultHeartbeatInterval
		} else if hb.Interval < 100*time.Millisecond {
			s.Bad("%s: %s is below 100ms; 1s is the usual value", s.Sub("heartbeat").Key("interval"), hb.Interval)
		}
	}
	hamalSchema(s, &c.HamalSchema)
}

// Redacted implements config.Redactor.
func (c *SourceConfig) Redacted() config.Block {
	r := *c
	r.Conn = c.Conn.redacted()
	return &r
}

// ReaderConfig is the block as source/mysql's Config, TLS included.
func (c *SourceConfig) ReaderConfig(env engine.Env) (srcmysql.Config, error) {
	tlsConfig, err := tlsFor("source", c.Conn)
	if err != nil {
		return srcmysql.Config{}, err
	}
	return srcmysql.Config{Addr: c.Addr, User: c.User, Password: c.Password, ServerID: c.ServerID,
		Flavor: c.Flavor, Start: c.Start, Tables: c.Tables, Exclude: c.Exclude, HamalSchema: c.HamalSchema,
		TLS: tlsConfig, Logger: env.Logger}, nil
}

// Open implements engine.SourceConfig.
func (c *SourceConfig) Open(ctx context.Context, env engine.Env, resume event.Position) (source.Source, error) {
	return c.OpenReader(ctx, env, resume)
}

// OpenReader is Open returning the binlog reader itself.
func (c *SourceConfig) OpenReader(ctx context.Context, env engine.Env, resume event.Position) (*srcmysql.Reader, error) {
	rc, err := c.ReaderConfig(env)
	if err != nil {
		return nil, err
	}
	return srcmysql.Open(ctx, rc, resume)
}

// Preflight runs source/mysql's preflight over the block's connection.
func (c *SourceConfig) Preflight(ctx context.Context, env engine.Env) (*srcmysql.Report, error) {
	rc, err := c.ReaderConfig(env)
	if err != nil {
		return nil, err
	}
	return srcmysql.Preflight(ctx, rc)
}

// Sidecar implements engine.Sidecar: the heartbeat writer, when
// heartbeat.enabled.
func (c *SourceConfig) Sidecar(env engine.Env) (func(ctx context.Context), error) {
	if !c.Heartbeat.Enabled {
		return nil, nil
	}
	rc, err := c.ReaderConfig(env)
	if err != nil {
		return nil, err
	}
	w := srcmysql.NewHeartbeatWriter(rc, c.Heartbeat.Interval)
	return func(ctx context.Context) { _ = w.Run(ctx) }, nil
}

// StartsAt implements engine.SourceConfig.
func (c *SourceConfig) StartsAt() string { return "source.start=" + c.Start }

// Endpoint implements engine.SourceConfig.
func (c *SourceConfig) Endpoint() string { return c.Addr }

// Check implements engine.SourceConfig: the binlog settings, server_id
// and replication grant (source/mysql.Preflight), the least privileges,
// and the tables the filters match (r.Tables, for the sink's check).
func (c *SourceConfig) Check(ctx context.Context, env engine.Env, r *engine.Report) {
	rc, err := c.ReaderConfig(env)
	if err != nil {
		r.Fail(err.Error(), "fix source.tls")
		return
	}
	report, err := srcmysql.Preflight(ctx, rc)
	if err != nil {
		r.Fail(fmt.Sprintf("source %s: %v", c.Addr, err), "check source.addr, source.user and source.password")
		return
	}
	if report.Version == "" {
		// No session: the login or TLS failed, and the problems say why.
		for _, p := range report.Problems {
			r.Fail("source: "+p.What, p.Fix)
		}
		return
	}
	r.OK("source %s reachable%s: %s %s", c.Addr, overTLS(c.TLS), report.Flavor, report.Version)
	for _, p := range report.Problems {
		r.Fail("source: "+p.What, p.Fix)
	}
	if len(report.Problems) == 0 {
		r.OK("source binlog settings, privileges and server_id %d", c.ServerID)
	}
	r.OK("source tables matching the filters: %d", len(report.Tables))
	if r.Checkpoint == nil {
		c.checkStart(ctx, rc, r)
	}
	r.Tables = make([]engine.Table, 0, len(report.Tables))
	for _, t := range report.Tables {
		r.Tables = append(r.Tables, engine.Table{Schema: t.Schema, Name: t.Name, Columns: t.Columns, HasKey: t.HasKey})
	}
	checkGrants(ctx, r, "source", c.Conn, srcmysql.SourceNeeds(c.Heartbeat.Enabled, c.HamalSchema))
}

// GTID returns the GTID set of a checkpointed source position.
func GTID(pos event.Position) (string, error) {
	p, err := srcmysql.DecodePosition(pos)
	if err != nil {
		return "", err
	}
	return p.GTID, nil
}
