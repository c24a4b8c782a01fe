package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hamal-replication/hamal/admin"
	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/relay"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "run --config FILE [flags]", stdout, stderr)
	path := fs.String("config", "", "channel config file (YAML)")
	exitOnError := fs.Bool("exit-on-error", false, "exit with status 1 on a fatal error instead of staying up in state \"error\" (for supervisors that restart)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "on SIGTERM, how long to wait for in-flight transactions before persisting and exiting")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 2
	}
	log := newLogger(cfg, stderr)
	warnTLS(log, cfg.TLSBlocks())

	store, err := checkpoint.Open(cfg.Checkpoint.Dir)
	if err != nil {
		fmt.Fprintf(stderr, "hamal: checkpoint.dir: %v\n", err)
		return 1
	}
	defer store.Close()

	guard, err := cfg.LoopGuard()
	if err != nil {
		fmt.Fprintf(stderr, "hamal: %v\n", err)
		return 2
	}
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
	srcEnv, snkEnv := engine.SourceEnv(cfg, log.With("side", "source")), engine.SinkEnv(cfg, log.With("side", "sink"))

	openSource := func(ctx context.Context, resume event.Position) (source.Source, error) {
		return src.Open(ctx, srcEnv, resume)
	}
	var relayLog pipeline.RelayLog // nil without a relay
	if rc := cfg.Relay; rc != nil {
		// The relay reads the source into its log from now on; the channel
		// applies from the log.
		rl, err := relay.Open(relay.Options{Channel: cfg.Name, Dir: rc.Dir, MaxBytes: rc.MaxBytes, MaxAge: rc.MaxAge,
			Fsync: relay.Fsync(rc.Fsync), Store: store, Open: openSource, Logger: log.With("side", "relay")})
		if err != nil {
			fmt.Fprintf(stderr, "hamal: relay.dir: %v\n", err)
			return 1
		}
		defer rl.Close()
		openSource, relayLog = rl.OpenSource, rl
	}

	var seed pipeline.Seeder // nil without a snapshot phase
	if sd, ok := src.(engine.Seeding); ok && sd.Seeds() {
		if seed, err = sd.Seeder(engine.SourceEnv(cfg, log.With("side", "snapshot")), snk, snkEnv, store); err != nil {
			fmt.Fprintf(stderr, "hamal: %v\n", err)
			return 1
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ch, err := pipeline.New(pipeline.Options{
		Name:               cfg.Name,
		OpenSource:         openSource,
		Relay:              relayLog,
		Seed:               seed,
		OpenSink:           func(ctx context.Context) (sink.Sink, error) { return snk.Open(ctx, snkEnv) },
		Store:              store,
		Guard:              guard,
		Workers:            cfg.Apply.Workers,
		BatchTxns:          cfg.Apply.BatchTxns,
		BatchBytes:         cfg.Apply.BatchBytes,
		Window:             cfg.Apply.Window(),
		CheckpointInterval: cfg.Checkpoint.Interval,
		DrainTimeout:       *drain,
		ExitOnError:        *exitOnError,
		Logger:             log,
		Registerer:         reg,
	})
	if err != nil {
		fmt.Fprintf(stderr, "hamal: %v\n", err)
		return 1
	}
	defer ch.Close()
	if cfg.Admin.Listen != "off" {
		srv, err := admin.Listen(cfg.Admin.Listen, admin.NewHandler(ch, reg, admin.Options{Token: cfg.Admin.Token, Pprof: cfg.Admin.Pprof}),
			admin.ServeOptions{Token: cfg.Admin.Token})
		if err != nil {
			fmt.Fprintf(stderr, "hamal: %v\n", err)
			return 1
		}
		defer srv.Close()
		log.Info("admin API listening", "addr", srv.Addr, "token_required", cfg.Admin.Token != "")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if sidecar, ok := src.(engine.Sidecar); ok {
		run, err := sidecar.Sidecar(srcEnv)
		if err != nil {
			fmt.Fprintf(stderr, "hamal: %v\n", err)
			return 1
		}
		if run != nil {
			sideCtx, stopSidecar := context.WithCancel(ctx)
			sidecarDone := make(chan struct{})
			go func() { defer close(sidecarDone); run(sideCtx) }()
			defer func() { stopSidecar(); <-sidecarDone }()
		}
	}
	log.Info("starting channel", "name", cfg.Name, "source", src.Endpoint(), "sink", snk.Endpoint(), "version", version)
	if err := ch.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "hamal: channel %s: %v\n", cfg.Name, err)
		return 1
	}
	return 0
}
