package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	sinkmysql "github.com/hamal-replication/hamal/sink/mysql"
	"github.com/hamal-replication/hamal/source"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

func init() {
	sourceEngines["mysql"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger, resume event.Position) (source.Source, error) {
		c := mysqlSourceConfig(cfg)
		c.Logger = log
		return srcmysql.Open(ctx, c, resume)
	}
	sinkEngines["mysql"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger) (sink.Sink, error) {
		c := mysqlSinkConfig(cfg)
		c.Logger = log
		return sinkmysql.Open(ctx, c)
	}
}

func mysqlSourceConfig(cfg *config.Config) srcmysql.Config {
	s := cfg.Source
	return srcmysql.Config{Addr: s.Addr, User: s.User, Password: s.Password, ServerID: s.ServerID,
		Flavor: s.Flavor, Start: s.Start, Tables: s.Tables, Exclude: s.Exclude, HamalSchema: s.HamalSchema}
}

func mysqlSinkConfig(cfg *config.Config) sinkmysql.Config {
	s := cfg.Sink
	rules := sinkmysql.ConflictRules{Default: sinkmysql.ConflictRule{Policy: s.Conflicts.Default}}
	for ns, tc := range s.Conflicts.Tables {
		if rules.Tables == nil {
			rules.Tables = map[string]sinkmysql.ConflictRule{}
		}
		rules.Tables[ns] = sinkmysql.ConflictRule{Policy: tc.Policy, Column: tc.Column}
	}
	return sinkmysql.Config{Addr: s.Addr, User: s.User, Password: s.Password, Channel: cfg.Name,
		Workers: cfg.Apply.Workers, AllowKeyless: s.AllowKeylessTables, Site: s.Site, HamalSchema: s.HamalSchema,
		Conflicts: rules, Unsynced: s.Unsynced}
}

func init() {
	sourceChecks["mysql"] = checkMySQLSource
	sinkChecks["mysql"] = checkMySQLSink
}

func checkMySQLSource(ctx context.Context, cfg *config.Config, c *checker) {
	report, err := srcmysql.Preflight(ctx, mysqlSourceConfig(cfg))
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
}

func checkMySQLSink(ctx context.Context, cfg *config.Config, c *checker) {
	sc := mysqlSinkConfig(cfg)
	sc.SkipLease = true
	snk, err := sinkmysql.Open(ctx, sc)
	if err != nil {
		c.fail(fmt.Sprintf("target %s: %v", cfg.Sink.Addr, err), "check sink.addr, sink.user and sink.password")
		return
	}
	defer snk.Close()
	c.ok("target %s reachable", cfg.Sink.Addr)
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
