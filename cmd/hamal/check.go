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
	// The checkpoint first: with one, the source's start key is not used,
	// so it is not checked either.
	var cp checkpoint.Checkpoint
	haveCP, cpErr := false, error(nil)
	if store, err := checkpoint.Open(cfg.Checkpoint.Dir); err != nil {
		cpErr = err
	} else {
		cp, haveCP, cpErr = store.Load(cfg.Name)
		store.Close()
	}
	if haveCP {
		c.Checkpoint = cp.Pos
	}
	seeding, _ := src.(engine.Seeding)
	c.Seeding = !haveCP && seeding != nil && seeding.Seeds()
	srcEnv, snkEnv := engine.SourceEnv(cfg, nil), engine.SinkEnv(cfg, nil)
	// The source's check runs first: it lists the tables the sink's
	// check looks for on the target.
	src.Check(ctx, srcEnv, c)
	snk.Check(ctx, snkEnv, c)
	if c.Seeding && c.Tables != nil {
		seeding.CheckSeed(ctx, srcEnv, snk, snkEnv, c)
	}

	switch {
	case cpErr != nil:
		c.Fail(fmt.Sprintf("checkpoint.dir %s: %v", cfg.Checkpoint.Dir, cpErr), "make the directory writable by hamal, and stop any other hamal using it")
	case haveCP:
		c.OK("checkpoint: resumes at %s (saved %s)", cp.Pos, cp.SavedAt.Format(time.RFC3339))
	case c.StartRefused:
		fmt.Fprintf(stdout, "      checkpoint: none yet, and %s is refused above\n", src.StartsAt())
	default:
		c.OK("checkpoint: none yet; starts at %s", src.StartsAt())
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
