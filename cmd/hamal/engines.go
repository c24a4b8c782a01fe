package main

import (
	"context"
	"log/slog"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

// sourceEngine opens a source of one kind from a validated channel config,
// resuming after resume (nil: start as the config says).
type sourceEngine func(ctx context.Context, cfg *config.Config, log *slog.Logger, resume event.Position) (source.Source, error)

// sinkEngine opens a sink of one kind from a validated channel config.
type sinkEngine func(ctx context.Context, cfg *config.Config, log *slog.Logger) (sink.Sink, error)

// sourceEngines and sinkEngines hold every kind config accepts (a test
// checks the two agree); each engine registers itself from its own file.
var (
	sourceEngines = map[string]sourceEngine{}
	sinkEngines   = map[string]sinkEngine{}
)

// sourceSeeders return a channel's first phase for a source of one kind
// (the MySQL snapshot of source.start: snapshot), or nil when the config
// asks for none. store is the channel's checkpoint store.
var sourceSeeders = map[string]func(cfg *config.Config, store *checkpoint.Store, log *slog.Logger) (pipeline.Seeder, error){}

// sourceSidecars return what runs beside a source of one kind for the
// life of the process (the MySQL heartbeat writer), or nil when the
// config asks for nothing.
var sourceSidecars = map[string]func(cfg *config.Config, log *slog.Logger) (func(ctx context.Context), error){}
