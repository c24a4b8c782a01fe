package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/sink"
	sinkmongo "github.com/hamal-replication/hamal/sink/mongo"
)

func init() {
	sinkEngines["mongo"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger) (sink.Sink, error) {
		return sinkmongo.Open(ctx, sinkmongo.Config{URI: cfg.Sink.Mongo.URI, Logger: log})
	}
	sinkChecks["mongo"] = checkMongoSink
}

func checkMongoSink(ctx context.Context, cfg *config.Config, c *checker) {
	s, err := sinkmongo.Open(ctx, sinkmongo.Config{URI: cfg.Sink.Mongo.URI})
	if err != nil {
		c.fail(fmt.Sprintf("sink %v", err), "check sink.mongo.uri and that the server listens there")
		return
	}
	s.Close()
	c.ok("sink MongoDB reachable")
}
