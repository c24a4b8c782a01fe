package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hamal-replication/hamal/failover"
)

func cmdFailoverReport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("failover-report", "failover-report --config FILE [--json]", stdout, stderr)
	path := fs.String("config", "", "the config of the channel from the site that failed (its source) to this site")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// Only warnings: the report is the output.
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	warnTLS(quiet, cfg.TLSBlocks())
	rep, err := failover.Build(ctx, cfg, quiet)
	if errors.Is(err, failover.ErrUnsupported) {
		fmt.Fprintf(stderr, "hamal: %v\n", err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "hamal: failover-report: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return 0
	}
	rep.Print(stdout)
	return 0
}
