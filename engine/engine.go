package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

// Driver is one engine: its name (the value of source.kind and
// sink.kind) and the config blocks of the sides it can play. A block is
// the engine's keys in the source or sink mapping; it opens, checks and
// describes what it configures, as Prometheus' discovery Config builds
// its Discoverer.
type Driver struct {
	// Name is the kind, e.g. "mysql".
	Name string
	// NewSource returns an empty source block; nil when the engine cannot
	// be a source.
	NewSource func() SourceConfig
	// NewSink returns an empty sink block; nil when the engine cannot be
	// a sink.
	NewSink func() SinkConfig
}

// SourceConfig is an engine's source block: its keys (the yaml tags of
// its fields, decoded strictly by config) and what it builds. Validate
// has run before any other method.
type SourceConfig interface {
	config.Block
	// Open connects and returns the source, resuming after resume (nil:
	// where the block's start key says). It is called again after every
	// transient error, each time with the checkpoint; the caller closes
	// what it returns.
	Open(ctx context.Context, env Env, resume event.Position) (source.Source, error)
	// Check is the source's part of `hamal check`: it changes nothing on
	// the server and reports each finding to r, failures with their fix.
	// It may fill r.Tables for the sink's check.
	Check(ctx context.Context, env Env, r *Report)
	// StartsAt says where a channel without a checkpoint starts, as the
	// config's key and value, e.g. "source.start=current", or in words
	// when the engine has no such choice (redis: a full sync).
	StartsAt() string
	// Endpoint names the server(s) for logs and reports, without secrets.
	Endpoint() string
}

// SinkConfig is an engine's sink block; Validate has run before any
// other method.
type SinkConfig interface {
	config.Block
	// Open connects and returns the sink, holding its fencing lease where
	// the engine has one; the caller closes it.
	Open(ctx context.Context, env Env) (sink.Sink, error)
	// Check is the sink's part of `hamal check`: read-only, next to a
	// running channel (it takes no lease). r.Tables holds what the
	// source's check found, when it could list them.
	Check(ctx context.Context, env Env, r *Report)
	// Endpoint names the server(s) for logs and reports, without secrets.
	Endpoint() string
}

// Sidecar is implemented by a source block that runs something beside the
// source for the life of the process (the MySQL heartbeat writer).
type Sidecar interface {
	// Sidecar returns what to run until its context is done, or nil when
	// the config asks for nothing.
	Sidecar(env Env) (func(ctx context.Context), error)
}

// Seeding is implemented by a source block that can begin a channel with
// a copy of what the source already holds (MySQL: source.start: snapshot).
type Seeding interface {
	// Seeds reports whether the config asks for the copy.
	Seeds() bool
	// Seeder returns the channel's first phase (pipeline.Options.Seed),
	// nil when Seeds is false. env is the source's environment, sink the
	// channel's sink block and sinkEnv its environment (the copy writes
	// through the sink the channel opens from them); store is the
	// channel's checkpoint store, where the phase keeps its progress.
	Seeder(env Env, sink SinkConfig, sinkEnv Env, store *checkpoint.Store) (pipeline.Seeder, error)
	// CheckSeed is the phase's part of `hamal check` for a channel without
	// a checkpoint: read-only, after the source's and the sink's checks,
	// with r.Tables as the source's check found them.
	CheckSeed(ctx context.Context, env Env, sink SinkConfig, sinkEnv Env, r *Report)
}

// Env is what a block needs from the channel it serves.
type Env struct {
	// Channel is the channel's name: it names fencing leases, markers and
	// the replica's name on the source.
	Channel string
	// Site is this side's loop-guard site (source.site or sink.site);
	// "" when the loop guard is off.
	Site string
	// Workers is apply.workers: how many Apply calls may run at once.
	Workers int
	// Logger is the side's logger; nil discards.
	Logger *slog.Logger
}

// SourceEnv is the environment of cfg's source.
func SourceEnv(cfg *config.Config, log *slog.Logger) Env {
	return Env{Channel: cfg.Name, Site: cfg.Source.Site, Workers: cfg.Apply.Workers, Logger: log}
}

// SinkEnv is the environment of cfg's sink.
func SinkEnv(cfg *config.Config, log *slog.Logger) Env {
	return Env{Channel: cfg.Name, Site: cfg.Sink.Site, Workers: cfg.Apply.Workers, Logger: log}
}

// SourceOf returns the source block of a config loaded through a
// Registry.
func SourceOf(cfg *config.Config) (SourceConfig, error) {
	b, ok := cfg.Source.Engine.(SourceConfig)
	if !ok {
		return nil, fmt.Errorf("source: kind %q has no source engine (load the config through the engine registry)", cfg.Source.Kind)
	}
	return b, nil
}

// SinkOf returns the sink block of a config loaded through a Registry.
func SinkOf(cfg *config.Config) (SinkConfig, error) {
	b, ok := cfg.Sink.Engine.(SinkConfig)
	if !ok {
		return nil, fmt.Errorf("sink: kind %q has no sink engine (load the config through the engine registry)", cfg.Sink.Kind)
	}
	return b, nil
}
