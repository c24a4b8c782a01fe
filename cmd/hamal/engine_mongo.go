package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	sinkmongo "github.com/hamal-replication/hamal/sink/mongo"
	"github.com/hamal-replication/hamal/source"
	srcmongo "github.com/hamal-replication/hamal/source/mongo"
)

func init() {
	sourceEngines["mongo"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger, resume event.Position) (source.Source, error) {
		c := mongoSourceConfig(cfg)
		c.Logger = log
		return srcmongo.Open(ctx, c, resume)
	}
	sinkEngines["mongo"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger) (sink.Sink, error) {
		c := mongoSinkConfig(cfg)
		c.Logger = log
		return sinkmongo.Open(ctx, c)
	}
	sourceChecks["mongo"] = checkMongoSource
	sinkChecks["mongo"] = checkMongoSink
}

func mongoSourceConfig(cfg *config.Config) srcmongo.Config {
	m := cfg.Source.Mongo
	return srcmongo.Config{URI: m.URI, Database: m.Database, Collection: m.Collection, Start: m.Start,
		PreImages: m.PreImages, InitialSync: m.InitialSync, Site: cfg.Source.Site}
}

func mongoSinkConfig(cfg *config.Config) sinkmongo.Config {
	return sinkmongo.Config{URI: cfg.Sink.Mongo.URI, Site: cfg.Sink.Site, Channel: cfg.Name}
}

func checkMongoSource(ctx context.Context, cfg *config.Config, c *checker) {
	kind, err := srcmongo.Check(ctx, mongoSourceConfig(cfg))
	if err != nil {
		c.fail(fmt.Sprintf("source %v", err), "check source.mongo.uri: it must name a replica set or mongos, and the user needs the changeStream and find actions")
		return
	}
	c.ok("source MongoDB is a %s; a change stream opens on the configured scope", kind)
	if cfg.Source.Site != "" && cfg.Source.Mongo.Database != "" {
		// Sinks write their origin markers into hamal.origin_marker, which
		// a database- or collection-scoped change stream never sees.
		c.fail("source.site is set (loop guard on) but source.mongo.database narrows the change stream, so it cannot see the origin markers in hamal.origin_marker: transactions another channel applied to this deployment would come back as local writes",
			"leave source.mongo.database and source.mongo.collection unset (watch the whole deployment), or leave source.site unset if no channel writes into this deployment")
	}
}

func checkMongoSink(ctx context.Context, cfg *config.Config, c *checker) {
	s, err := sinkmongo.Open(ctx, mongoSinkConfig(cfg))
	if err != nil {
		c.fail(fmt.Sprintf("sink %v", err), "check sink.mongo.uri and that the server listens there")
		return
	}
	defer s.Close()
	switch {
	case cfg.Sink.Site == "":
		c.ok("sink MongoDB reachable")
	case s.Transactions():
		c.ok("sink MongoDB reachable; a replica set, so batches are applied in transactions with the origin marker")
	default:
		c.fail("sink.site is set but the sink MongoDB is not a replica set: batches cannot carry the origin marker, so writes this channel applies would be replicated back as local ones",
			"make the target a replica set (a one-member set will do: mongod --replSet rs0, then rs.initiate()), or leave sink.site unset if no channel reads this target")
	}
}
