package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	sinkkafka "github.com/hamal-replication/hamal/sink/kafka"
	"github.com/hamal-replication/hamal/source"
	srckafka "github.com/hamal-replication/hamal/source/kafka"
)

func init() {
	sourceEngines["kafka"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger, resume event.Position) (source.Source, error) {
		c := kafkaSourceConfig(cfg)
		c.Logger = log
		return srckafka.Open(ctx, c, resume)
	}
	sinkEngines["kafka"] = func(ctx context.Context, cfg *config.Config, log *slog.Logger) (sink.Sink, error) {
		c := kafkaSinkConfig(cfg)
		c.Logger = log
		return sinkkafka.Open(ctx, c)
	}
	sourceChecks["kafka"] = checkKafkaSource
	sinkChecks["kafka"] = checkKafkaSink
}

func kafkaSourceConfig(cfg *config.Config) srckafka.Config {
	k := cfg.Source.Kafka
	return srckafka.Config{Brokers: k.Brokers, Topics: k.Topics, Start: k.Start, Rescan: k.Rescan}
}

func kafkaSinkConfig(cfg *config.Config) sinkkafka.Config {
	k := cfg.Sink.Kafka
	return sinkkafka.Config{Brokers: k.Brokers, Topic: k.Topic, DDL: k.DDL, DDLTopic: k.DDLTopic, Channel: cfg.Name,
		Site: k.Site, AutoCreateTopics: k.AutoCreateTopics, Linger: k.Linger, MaxMessageBytes: k.MaxMessageBytes,
		WriteTimeout: k.WriteTimeout}
}

func checkKafkaSource(ctx context.Context, cfg *config.Config, c *checker) {
	brokers := strings.Join(cfg.Source.Kafka.Brokers, ",")
	if err := sinkkafka.Ping(ctx, cfg.Source.Kafka.Brokers); err != nil {
		c.fail(fmt.Sprintf("source %v", err), "check source.kafka.brokers and that the brokers listen there")
		return
	}
	c.ok("source Kafka brokers %s reachable", brokers)
}

func checkKafkaSink(ctx context.Context, cfg *config.Config, c *checker) {
	brokers := strings.Join(cfg.Sink.Kafka.Brokers, ",")
	if err := sinkkafka.Ping(ctx, cfg.Sink.Kafka.Brokers); err != nil {
		c.fail(fmt.Sprintf("sink %v", err), "check sink.kafka.brokers and that the brokers listen there")
		return
	}
	c.ok("sink Kafka brokers %s reachable; topics %q (auto-create %v), DDL %s", brokers, cfg.Sink.Kafka.Topic,
		cfg.Sink.Kafka.AutoCreateTopics, cfg.Sink.Kafka.DDL)
}
