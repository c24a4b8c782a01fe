package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/config"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// checker collects the preflight's findings, one line each.
type checker struct {
	out      io.Writer
	problems int
	// mysqlTables is what a MySQL source's preflight found, for a MySQL
	// sink's check to look for on the target.
	mysqlTables []srcmysql.TableInfo
}

func (c *checker) fail(what, fix string) {
	c.problems++
	fmt.Fprintf(c.out, "FAIL  %s\n      fix: %s\n", what, fix)
}

func (c *checker) ok(format string, a ...any) { fmt.Fprintf(c.out, "ok    "+format+"\n", a...) }

// sourceChecks and sinkChecks run one kind's preflight; the source's runs
// first. An engine without one is reported as not checked.
var (
	sourceChecks = map[string]func(ctx context.Context, cfg *config.Config, c *checker){}
	sinkChecks   = map[string]func(ctx context.Context, cfg *config.Config, c *checker){}
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
	c := &checker{out: stdout}

	fmt.Fprintf(stdout, "config %s: channel %s\n", *path, cfg.Name)
	if check, ok := sourceChecks[cfg.Source.Kind]; ok {
		check(ctx, cfg, c)
	} else {
		c.ok("source kind %s: no preflight; `hamal run` reports problems as it meets them", cfg.Source.Kind)
	}
	if check, ok := sinkChecks[cfg.Sink.Kind]; ok {
		check(ctx, cfg, c)
	} else {
		c.ok("sink kind %s: no preflight; `hamal run` reports problems as it meets them", cfg.Sink.Kind)
	}

	if store, err := checkpoint.Open(cfg.Checkpoint.Dir); err != nil {
		c.fail(fmt.Sprintf("checkpoint.dir %s: %v", cfg.Checkpoint.Dir, err), "make the directory writable by hamal, and stop any other hamal using it")
	} else {
		if cp, ok, err := store.Load(cfg.Name); err == nil && ok {
			c.ok("checkpoint: resumes at %s (saved %s)", cp.Pos, cp.SavedAt.Format(time.RFC3339))
		} else if err == nil {
			c.ok("checkpoint: none yet; starts at source.start=%s", cfg.Source.Start)
		}
		store.Close()
	}

	if c.problems > 0 {
		fmt.Fprintf(stdout, "%d problem(s) found\n", c.problems)
		return 1
	}
	fmt.Fprintln(stdout, "all checks passed")
	return 0
}
