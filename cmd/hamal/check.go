package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
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
	src, err := engine.SourceOf(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "hamal: %v\n", err)
		return 2
	}
	snk, err := engine.SinkOf(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "hamal: %v\n", err)
		return 2
	}
	c := engine.NewReport(stdout)

	fmt.Fprintf(stdout, "config %s: channel %s\n", *path, cfg.Name)
	reportTLS(c, cfg.TLSBlocks())
	// The source's check runs first: it lists the tables the sink's
	// check looks for on the target.
	src.Check(ctx, engine.SourceEnv(cfg, nil), c)
	snk.Check(ctx, engine.SinkEnv(cfg, nil), c)

	if store, err := checkpoint.Open(cfg.Checkpoint.Dir); err != nil {
		c.Fail(fmt.Sprintf("checkpoint.dir %s: %v", cfg.Checkpoint.Dir, err), "make the directory writable by hamal, and stop any other hamal using it")
	} else {
		if cp, ok, err := store.Load(cfg.Name); err == nil && ok {
			c.OK("checkpoint: resumes at %s (saved %s)", cp.Pos, cp.SavedAt.Format(time.RFC3339))
		} else if err == nil {
			c.OK("checkpoint: none yet; starts at %s", src.StartsAt())
		}
		store.Close()
	}

	if n := c.Problems(); n > 0 {
		fmt.Fprintf(stdout, "%d problem(s) found\n", n)
		return 1
	}
	fmt.Fprintln(stdout, "all checks passed")
	return 0
}

// reportTLS lists what each tls block does to its link; skip_verify is a
// warning.
func reportTLS(r *engine.Report, blocks []config.TLSAt) {
	for _, b := range blocks {
		if w := b.TLS.Warning(b.Key); w != "" {
			r.Warn(w, "set "+b.Key+".ca to the CA that signed the server's certificate and remove "+b.Key+".skip_verify")
			continue
		}
		r.OK("%s: %s", b.Key, b.TLS.Describe())
	}
}

// warnTLS logs the warning of each tls block that does not verify its
// server.
func warnTLS(log *slog.Logger, blocks []config.TLSAt) {
	for _, b := range blocks {
		if w := b.TLS.Warning(b.Key); w != "" {
			log.Warn(w)
		}
	}
}
