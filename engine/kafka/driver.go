package kafka

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	sinkkafka "github.com/hamal-replication/hamal/sink/kafka"
	"github.com/hamal-replication/hamal/source"
	srckafka "github.com/hamal-replication/hamal/source/kafka"
)

// Driver is the Kafka engine (kind kafka) on both sides.
var Driver = engine.Driver{
	Name:      "kafka",
	NewSource: func() engine.SourceConfig { return &SourceConfig{} },
	NewSink:   func() engine.SinkConfig { return &SinkConfig{} },
}

// SinkConfig is the sink block of kind kafka.
type SinkConfig struct {
	Kafka *Sink `yaml:"kafka"`
}

// Sink holds the keys under sink.kafka.
type Sink struct {
	Brokers          []string      `yaml:"brokers"`            // host:port, one or more
	Topic            string        `yaml:"topic"`              // template over {db}, {table}, {channel}; default hamal.{db}.{table}
	Site             string        `yaml:"site"`               // name of the source's site, written as source.site
	DDL              string        `yaml:"ddl"`                // error | skip | publish; default error
	DDLTopic         string        `yaml:"ddl_topic"`          // template over {channel}; default hamal.{channel}.ddl
	AutoCreateTopics bool          `yaml:"auto_create_topics"` // let the brokers create missing topics
	Linger           time.Duration `yaml:"linger"`             // wait to fill a produce request; default 2ms
	MaxMessageBytes  int           `yaml:"max_message_bytes"`  // default 1 MiB
	WriteTimeout     time.Duration `yaml:"write_timeout"`      // default 10s
}

// SourceConfig is the source block of kind kafka.
type SourceConfig struct {
	Kafka *Source `yaml:"kafka"`
}

// Source holds the keys under source.kafka.
type Source struct {
	Brokers []string `yaml:"brokers"` // host:port, one or more
	// Topics are topic names or globs ("hamal.app.*"), matched against the
	// cluster's topics at start and every rescan interval.
	Topics []string      `yaml:"topics"`
	Start  string        `yaml:"start"`  // earliest | latest, for partitions without a checkpoint; default earliest
	Rescan time.Duration `yaml:"rescan"` // how often to look for new topics and partitions; default 10s
}

var (
	_ engine.SourceConfig = (*SourceConfig)(nil)
	_ engine.SinkConfig   = (*SinkConfig)(nil)
)

// Validate implements config.Block.
func (c *SinkConfig) Validate(s *config.Scope) {
	k := c.Kafka
	if k == nil {
		s.Bad("%s: required for kind kafka, e.g. %s: {brokers: [\"127.0.0.1:9092\"]}", s.Key("kafka"), s.Key("kafka"))
		return
	}
	s = s.Sub("kafka")
	checkBrokers(s, k.Brokers)
	if k.Topic == "" {
		k.Topic = "hamal.{db}.{table}"
	}
	switch k.DDL {
	case "":
		k.DDL = "error"
	case "error", "skip", "publish":
	default:
		s.Bad("%s: %q is not one of error, skip, publish", s.Key("ddl"), k.DDL)
	}
	if k.DDLTopic == "" {
		k.DDLTopic = "hamal.{channel}.ddl"
	}
	if k.Linger < 0 || k.MaxMessageBytes < 0 || k.WriteTimeout < 0 {
		s.Bad("%s: linger, max_message_bytes and write_timeout must be positive", s.Path)
	}
}

// Validate implements config.Block.
func (c *SourceConfig) Validate(s *config.Scope) {
	k := c.Kafka
	if k == nil {
		s.Bad("%s: required for kind kafka, e.g. %s: {brokers: [\"127.0.0.1:9092\"], topics: [\"hamal.app.*\"]}", s.Key("kafka"), s.Key("kafka"))
		return
	}
	s = s.Sub("kafka")
	checkBrokers(s, k.Brokers)
	if len(k.Topics) == 0 {
		s.Bad("%s: required; topic names or globs, e.g. [\"hamal.app.*\"]", s.Key("topics"))
	}
	for i, tp := range k.Topics {
		if _, err := path.Match(tp, "x"); err != nil || tp == "" {
			s.Bad("%s[%d]: %q is not a topic name or glob", s.Key("topics"), i, tp)
		}
	}
	switch k.Start {
	case "":
		k.Start = "earliest"
	case "earliest", "latest":
	default:
		s.Bad("%s: %q is not one of earliest, latest", s.Key("start"), k.Start)
	}
	if k.Rescan == 0 {
		k.Rescan = 10 * time.Second
	} else if k.Rescan < 0 {
		s.Bad("%s: must be positive, e.g. 10s", s.Key("rescan"))
	}
}

func checkBrokers(s *config.Scope, brokers []string) {
	if len(brokers) == 0 {
		s.Bad("%s: required; one or more host:port, e.g. [\"127.0.0.1:9092\"]", s.Key("brokers"))
	}
	for i, b := range brokers {
		s.Addr(fmt.Sprintf("brokers[%d]", i), b)
	}
}

// ReaderConfig is the block as source/kafka's Config.
func (c *SourceConfig) ReaderConfig(env engine.Env) srckafka.Config {
	k := c.Kafka
	return srckafka.Config{Brokers: k.Brokers, Topics: k.Topics, Start: k.Start, Rescan: k.Rescan, Logger: env.Logger}
}

// Open implements engine.SourceConfig.
func (c *SourceConfig) Open(ctx context.Context, env engine.Env, resume event.Position) (source.Source, error) {
	return srckafka.Open(ctx, c.ReaderConfig(env), resume)
}

// Check implements engine.SourceConfig: a broker answers.
func (c *SourceConfig) Check(ctx context.Context, env engine.Env, r *engine.Report) {
	if err := sinkkafka.Ping(ctx, c.Kafka.Brokers); err != nil {
		r.Fail(fmt.Sprintf("source %v", err), "check source.kafka.brokers and that the brokers listen there")
		return
	}
	r.OK("source Kafka brokers %s reachable", c.Endpoint())
}

// StartsAt implements engine.SourceConfig.
func (c *SourceConfig) StartsAt() string { return "source.kafka.start=" + c.Kafka.Start }

// Endpoint implements engine.SourceConfig.
func (c *SourceConfig) Endpoint() string { return strings.Join(c.Kafka.Brokers, ",") }

// ApplierConfig is the block as sink/kafka's Config.
func (c *SinkConfig) ApplierConfig(env engine.Env) sinkkafka.Config {
	k := c.Kafka
	return sinkkafka.Config{Brokers: k.Brokers, Topic: k.Topic, DDL: k.DDL, DDLTopic: k.DDLTopic, Channel: env.Channel,
		Site: k.Site, AutoCreateTopics: k.AutoCreateTopics, Linger: k.Linger, MaxMessageBytes: k.MaxMessageBytes,
		WriteTimeout: k.WriteTimeout, Logger: env.Logger}
}

// Open implements engine.SinkConfig.
func (c *SinkConfig) Open(ctx context.Context, env engine.Env) (sink.Sink, error) {
	return sinkkafka.Open(ctx, c.ApplierConfig(env))
}

// Check implements engine.SinkConfig: a broker answers.
func (c *SinkConfig) Check(ctx context.Context, env engine.Env, r *engine.Report) {
	k := c.Kafka
	if err := sinkkafka.Ping(ctx, k.Brokers); err != nil {
		r.Fail(fmt.Sprintf("sink %v", err), "check sink.kafka.brokers and that the brokers listen there")
		return
	}
	r.OK("sink Kafka brokers %s reachable; topics %q (auto-create %v), DDL %s", c.Endpoint(), k.Topic, k.AutoCreateTopics, k.DDL)
}

// Endpoint implements engine.SinkConfig.
func (c *SinkConfig) Endpoint() string { return strings.Join(c.Kafka.Brokers, ",") }
