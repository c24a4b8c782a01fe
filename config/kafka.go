package config

import (
	"fmt"
	"path"
	"time"
)

func init() {
	register("kafka", Kind{Source: validateKafkaSource, Sink: validateKafkaSink})
}

// KafkaSink holds the keys of sink.kind kafka, under sink.kafka.
type KafkaSink struct {
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

// KafkaSource holds the keys of source.kind kafka, under source.kafka.
type KafkaSource struct {
	Brokers []string `yaml:"brokers"` // host:port, one or more
	// Topics are topic names or globs ("hamal.app.*"), matched against the
	// cluster's topics at start and every rescan interval.
	Topics []string      `yaml:"topics"`
	Start  string        `yaml:"start"`  // earliest | latest, for partitions without a checkpoint; default earliest
	Rescan time.Duration `yaml:"rescan"` // how often to look for new topics and partitions; default 10s
}

func validateKafkaSink(c *Config, bad func(string, ...any)) {
	if c.Sink.Addr != "" || c.Sink.User != "" {
		bad("sink.addr/sink.user: not used by kind kafka; list brokers under sink.kafka.brokers")
	}
	k := c.Sink.Kafka
	if k == nil {
		bad("sink.kafka: required for kind kafka, e.g. sink.kafka: {brokers: [\"127.0.0.1:9092\"]}")
		return
	}
	checkBrokers(bad, "sink.kafka.brokers", k.Brokers)
	if k.Topic == "" {
		k.Topic = "hamal.{db}.{table}"
	}
	switch k.DDL {
	case "":
		k.DDL = "error"
	case "error", "skip", "publish":
	default:
		bad("sink.kafka.ddl: %q is not one of error, skip, publish", k.DDL)
	}
	if k.DDLTopic == "" {
		k.DDLTopic = "hamal.{channel}.ddl"
	}
	if k.Linger < 0 || k.MaxMessageBytes < 0 || k.WriteTimeout < 0 {
		bad("sink.kafka: linger, max_message_bytes and write_timeout must be positive")
	}
}

func validateKafkaSource(c *Config, bad func(string, ...any)) {
	if c.Source.Addr != "" || c.Source.User != "" || c.Source.ServerID != 0 {
		bad("source.addr/source.user/source.server_id: not used by kind kafka; list brokers under source.kafka.brokers")
	}
	k := c.Source.Kafka
	if k == nil {
		bad("source.kafka: required for kind kafka, e.g. source.kafka: {brokers: [\"127.0.0.1:9092\"], topics: [\"hamal.app.*\"]}")
		return
	}
	checkBrokers(bad, "source.kafka.brokers", k.Brokers)
	if len(k.Topics) == 0 {
		bad("source.kafka.topics: required; topic names or globs, e.g. [\"hamal.app.*\"]")
	}
	for i, tp := range k.Topics {
		if _, err := path.Match(tp, "x"); err != nil || tp == "" {
			bad("source.kafka.topics[%d]: %q is not a topic name or glob", i, tp)
		}
	}
	switch k.Start {
	case "":
		k.Start = "earliest"
	case "earliest", "latest":
	default:
		bad("source.kafka.start: %q is not one of earliest, latest", k.Start)
	}
	if k.Rescan == 0 {
		k.Rescan = 10 * time.Second
	} else if k.Rescan < 0 {
		bad("source.kafka.rescan: must be positive, e.g. 10s")
	}
}

func checkBrokers(bad func(string, ...any), key string, brokers []string) {
	if len(brokers) == 0 {
		bad("%s: required; one or more host:port, e.g. [\"127.0.0.1:9092\"]", key)
	}
	for i, b := range brokers {
		checkAddr(bad, fmt.Sprintf("%s[%d]", key, i), b)
	}
}
