package main

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	sinkredis "github.com/hamal-replication/hamal/sink/redis"
	"github.com/hamal-replication/hamal/source"
	srcredis "github.com/hamal-replication/hamal/source/redis"
)

func init() {
	sourceEngines["redis"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger, resume event.Position) (source.Source, error) {
		c := redisSourceConfig(cfg)
		c.Logger = log
		return srcredis.Open(ctx, c, resume)
	}
	sinkEngines["redis"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger) (sink.Sink, error) {
		c := redisSinkConfig(cfg)
		c.Logger = log
		return sinkredis.Open(ctx, c)
	}
	sourceChecks["redis"] = checkRedisSource
	sinkChecks["redis"] = checkRedisSink
}

func redisSourceConfig(cfg *config.Config) srcredis.Config {
	s := cfg.Source
	c := srcredis.Config{Addr: s.Addr, User: s.User, Password: s.Password, Site: s.Site, Channel: cfg.Name}
	if r := s.Redis; r != nil {
		c.Filter = &srcredis.Filter{Include: r.IncludePrefixes, Exclude: r.ExcludePrefixes, Databases: r.Databases}
	}
	return c
}

func redisSinkConfig(cfg *config.Config) sinkredis.Config {
	s := cfg.Sink
	return sinkredis.Config{Addr: s.Addr, User: s.User, Password: s.Password, Site: s.Site, Channel: cfg.Name,
		Workers: cfg.Apply.Workers}
}

func checkRedisSource(ctx context.Context, cfg *config.Config, c *checker) {
	s := cfg.Source
	client := goredis.NewClient(&goredis.Options{Addr: s.Addr, Username: s.User, Password: s.Password, MaxRetries: -1})
	defer client.Close()
	if _, err := srcredis.LoadCommands(ctx, client); err != nil {
		c.fail(fmt.Sprintf("source %s: %v", s.Addr, err), "check source.addr, source.user and source.password; the user needs +psync +replconf +command +info")
		return
	}
	c.ok("source redis %s reachable; COMMAND table read", s.Addr)
}

func checkRedisSink(ctx context.Context, cfg *config.Config, c *checker) {
	sc := redisSinkConfig(cfg)
	sc.SkipLease = true // the running channel holds it
	snk, err := sinkredis.Open(ctx, sc)
	if err != nil {
		c.fail(fmt.Sprintf("target %s: %v", cfg.Sink.Addr, err), "check sink.addr, sink.user and sink.password")
		return
	}
	snk.Close()
	c.ok("target redis %s reachable", cfg.Sink.Addr)
}
