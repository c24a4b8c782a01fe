package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	sinkmysql "github.com/hamal-replication/hamal/sink/mysql"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// cmdCheck runs the preflight: it changes nothing on either server and
// exits 1 when anything would stop `hamal run`.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "check --config FILE", stdout, stderr)
	path := fs.String("config", "", "channel config file (YAML)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	problems := 0
	fail := func(what, fix string) {
		problems++
		fmt.Fprintf(stdout, "FAIL  %s\n      fix: %s\n", what, fix)
	}
	okLine := func(format string, a ...any) { fmt.Fprintf(stdout, "ok    "+format+"\n", a...) }

	fmt.Fprintf(stdout, "config %s: channel %s\n", *path, cfg.Name)
	report, err := srcmysql.Preflight(ctx, mysqlSourceConfig(cfg))
	if err != nil {
		fail(fmt.Sprintf("source %s: %v", cfg.Source.Addr, err), "check source.addr, source.user and source.password")
	} else {
		okLine("source %s reachable: %s %s", cfg.Source.Addr, report.Flavor, report.Version)
		for _, p := range report.Problems {
			fail("source: "+p.What, p.Fix)
		}
		if len(report.Problems) == 0 {
			okLine("source binlog settings, privileges and server_id %d", cfg.Source.ServerID)
		}
		okLine("source tables matching the filters: %d", len(report.Tables))
	}

	sc := mysqlSinkConfig(cfg)
	sc.SkipLease = true
	snk, err := sinkmysql.Open(ctx, sc)
	if err != nil {
		fail(fmt.Sprintf("target %s: %v", cfg.Sink.Addr, err), "check sink.addr, sink.user and sink.password")
	} else {
		defer snk.Close()
		okLine("target %s reachable", cfg.Sink.Addr)
		if report != nil {
			missing := 0
			for _, t := range report.Tables {
				if err := snk.CheckTable(ctx, t.Schema, t.Name, t.Columns); err != nil {
					missing++
					fail(err.Error(), "create or alter the table on the target to match the source")
				}
				if !t.HasKey && !matchAny(cfg.Sink.AllowKeylessTables, t.Schema+"."+t.Name) {
					fail(fmt.Sprintf("source table %s.%s has neither a primary key nor a NOT NULL unique key", t.Schema, t.Name),
						"add a primary key, exclude the table (source.exclude), or list it in sink.allow_keyless_tables")
				}
			}
			if missing == 0 {
				okLine("target has all %d tables with compatible columns", len(report.Tables))
			}
		}
	}

	if store, err := checkpoint.Open(cfg.Checkpoint.Dir); err != nil {
		fail(fmt.Sprintf("checkpoint.dir %s: %v", cfg.Checkpoint.Dir, err), "make the directory writable by hamal, and stop any other hamal using it")
	} else {
		if cp, ok, err := store.Load(cfg.Name); err == nil && ok {
			okLine("checkpoint: resumes at %s (saved %s)", cp.Pos, cp.SavedAt.Format(time.RFC3339))
		} else if err == nil {
			okLine("checkpoint: none yet; starts at source.start=%s", cfg.Source.Start)
		}
		store.Close()
	}

	if problems > 0 {
		fmt.Fprintf(stdout, "%d problem(s) found\n", problems)
		return 1
	}
	fmt.Fprintln(stdout, "all checks passed")
	return 0
}
