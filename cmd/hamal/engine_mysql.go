package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/sink"
	sinkmysql "github.com/hamal-replication/hamal/sink/mysql"
	"github.com/hamal-replication/hamal/snapshot"
	"github.com/hamal-replication/hamal/source"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

func init() {
	sourceEngines["mysql"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger, resume event.Position) (source.Source, error) {
		c, err := mysqlSourceConfig(cfg)
		if err != nil {
			return nil, err
		}
		c.Logger = log
		return srcmysql.Open(ctx, c, resume)
	}
	sinkEngines["mysql"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger) (sink.Sink, error) {
		c, err := mysqlSinkConfig(cfg)
		if err != nil {
			return nil, err
		}
		c.Logger = log
		return sinkmysql.Open(ctx, c)
	}
	sourceSeeders["mysql"] = mysqlSnapshot
	sourceSidecars["mysql"] = func(cfg *config.Config, log *slog.Logger) (func(ctx context.Context), error) {
		if !cfg.Source.Heartbeat.Enabled {
			return nil, nil
		}
		c, err := mysqlSourceConfig(cfg)
		if err != nil {
			return nil, err
		}
		c.Logger = log
		w := srcmysql.NewHeartbeatWriter(c, cfg.Source.Heartbeat.Interval)
		return func(ctx context.Context) { _ = w.Run(ctx) }, nil
	}
}

// mysqlSnapshot is the snapshot phase of a channel started with
// source.start: snapshot, nil for any other start.
func mysqlSnapshot(cfg *config.Config, store *checkpoint.Store, log *slog.Logger) (pipeline.Seeder, error) {
	if cfg.Source.Start != config.StartSnapshot {
		return nil, nil
	}
	sc, err := mysqlSnapshotConfig(cfg)
	if err != nil {
		return nil, err
	}
	sc.Store, sc.Logger = store, log
	sc.Source.Logger = log.With("side", "source")
	return snapshot.New(sc)
}

// mysqlSnapshotConfig is the snapshot's configuration from the channel's.
func mysqlSnapshotConfig(cfg *config.Config) (snapshot.Config, error) {
	src, err := mysqlSourceConfig(cfg)
	if err != nil {
		return snapshot.Config{}, err
	}
	snk, err := mysqlSinkConfig(cfg)
	if err != nil {
		return snapshot.Config{}, err
	}
	var path []string
	if cfg.Source.Site != "" && cfg.Sink.Site != "" {
		// The loop guard's path of rows read at the source site and
		// applied at the sink's.
		path = []string{cfg.Source.Site, cfg.Sink.Site}
	}
	return snapshot.Config{Channel: cfg.Name, Source: src, CreateTables: cfg.Sink.CreateTablesOn(),
		Workers: cfg.Source.Snapshot.Workers, ChunkRows: cfg.Source.Snapshot.ChunkRows, Path: path,
		Target: func(ctx context.Context) (*client.Conn, error) {
			return client.ConnectWithContext(ctx, snk.Addr, snk.User, snk.Password, "", 10*time.Second, func(c *client.Conn) error {
				if snk.TLS != nil {
					c.SetTLSConfig(snk.TLS)
				}
				return nil
			})
		}}, nil
}

func mysqlSourceConfig(cfg *config.Config) (srcmysql.Config, error) {
	s := cfg.Source
	tlsConfig, err := s.TLS.Config(hostOf(s.Addr))
	if err != nil {
		return srcmysql.Config{}, fmt.Errorf("source.tls: %w", err)
	}
	return srcmysql.Config{Addr: s.Addr, User: s.User, Password: s.Password, ServerID: s.ServerID,
		Flavor: s.Flavor, Start: s.Start, Tables: s.Tables, Exclude: s.Exclude, HamalSchema: s.HamalSchema, TLS: tlsConfig}, nil
}

func mysqlSinkConfig(cfg *config.Config) (sinkmysql.Config, error) {
	s := cfg.Sink
	tlsConfig, err := s.TLS.Config(hostOf(s.Addr))
	if err != nil {
		return sinkmysql.Config{}, fmt.Errorf("sink.tls: %w", err)
	}
	rules := sinkmysql.ConflictRules{Default: sinkmysql.ConflictRule{Policy: s.Conflicts.Default}}
	for ns, tc := range s.Conflicts.Tables {
		if rules.Tables == nil {
			rules.Tables = map[string]sinkmysql.ConflictRule{}
		}
		rules.Tables[ns] = sinkmysql.ConflictRule{Policy: tc.Policy, Column: tc.Column}
	}
	return sinkmysql.Config{Addr: s.Addr, User: s.User, Password: s.Password, Channel: cfg.Name,
		Workers: cfg.Apply.Workers, AllowKeyless: s.AllowKeylessTables, Site: s.Site, HamalSchema: s.HamalSchema,
		Conflicts: rules, Unsynced: s.Unsynced, TLS: tlsConfig}, nil
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

func init() {
	sourceChecks["mysql"] = checkMySQLSource
	sinkChecks["mysql"] = checkMySQLSink
}

func checkMySQLSource(ctx context.Context, cfg *config.Config, c *checker) {
	sc, err := mysqlSourceConfig(cfg)
	if err != nil {
		c.fail(err.Error(), "fix source.tls")
		return
	}
	report, err := srcmysql.Preflight(ctx, sc)
	if err != nil {
		c.fail(fmt.Sprintf("source %s: %v", cfg.Source.Addr, err), "check source.addr, source.user and source.password")
		return
	}
	c.ok("source %s reachable: %s %s", cfg.Source.Addr, report.Flavor, report.Version)
	for _, p := range report.Problems {
		c.fail("source: "+p.What, p.Fix)
	}
	if len(report.Problems) == 0 {
		c.ok("source binlog settings, privileges and server_id %d", cfg.Source.ServerID)
	}
	c.ok("source tables matching the filters: %d", len(report.Tables))
	c.mysqlTables = report.Tables
	checkGrants(ctx, c, "source", cfg.Source.Addr, cfg.Source.User, cfg.Source.Password, sc.TLS, sourceNeeds(cfg.Source.Heartbeat.Enabled, cfg.Source.HamalSchema))
}

// checkGrants reports the least privileges (docs/deploy.md) the account
// lacks, each with the GRANT that fixes it.
func checkGrants(ctx context.Context, c *checker, side, addr, user, password string, tlsConfig *tls.Config, needs []need) {
	var opts []client.Option
	if tlsConfig != nil {
		opts = append(opts, func(conn *client.Conn) error { conn.SetTLSConfig(tlsConfig); return nil })
	}
	g, err := showGrants(ctx, addr, user, password, opts...)
	if err != nil {
		c.fail(fmt.Sprintf("%s %s: SHOW GRANTS: %v", side, addr, err), "check "+side+".user and "+side+".password")
		return
	}
	fixes := g.missing(needs)
	for _, fix := range fixes {
		c.fail(fmt.Sprintf("%s.user %s lacks a privilege Hamal needs (grants through roles are not seen)", side, user), fix)
	}
	if len(fixes) == 0 {
		c.ok("%s.user %s has the privileges Hamal needs", side, user)
	}
}

func checkMySQLSink(ctx context.Context, cfg *config.Config, c *checker) {
	sc, err := mysqlSinkConfig(cfg)
	if err != nil {
		c.fail(err.Error(), "fix sink.tls")
		return
	}
	sc.SkipLease = true
	snk, err := sinkmysql.Open(ctx, sc)
	if err != nil {
		c.fail(fmt.Sprintf("target %s: %v", cfg.Sink.Addr, err), "check sink.addr, sink.user and sink.password")
		return
	}
	defer snk.Close()
	c.ok("target %s reachable", cfg.Sink.Addr)
	schemas := map[string]bool{}
	var schemaList []string
	for _, t := range c.mysqlTables {
		if !schemas[t.Schema] {
			schemas[t.Schema] = true
			schemaList = append(schemaList, t.Schema)
		}
	}
	checkGrants(ctx, c, "sink", cfg.Sink.Addr, cfg.Sink.User, cfg.Sink.Password, sc.TLS, sinkNeeds(schemaList, cfg.Sink.HamalSchema, cfg.Sink.Site != ""))
	if c.mysqlTables == nil {
		return
	}
	missing := 0
	for _, t := range c.mysqlTables {
		if err := snk.CheckTable(ctx, t.Schema, t.Name, t.Columns); err != nil {
			missing++
			c.fail(err.Error(), "create or alter the table on the target to match the source")
		}
		if !t.HasKey && !matchAny(cfg.Sink.AllowKeylessTables, t.Schema+"."+t.Name) {
			c.fail(fmt.Sprintf("source table %s.%s has neither a primary key nor a NOT NULL unique key", t.Schema, t.Name),
				"add a primary key, exclude the table (source.exclude), or list it in sink.allow_keyless_tables")
		}
	}
	if missing == 0 {
		c.ok("target has all %d tables with compatible columns", len(c.mysqlTables))
	}
}
