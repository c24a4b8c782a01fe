package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/engine/mysql"
)

var registry = engine.NewRegistry(Driver, mysql.Driver)

const sinkExample = `name: sz-to-kafka
source:
  kind: mysql
  addr: 127.0.0.1:3306
  user: repl
  server_id: 1001
sink:
  kind: kafka
  kafka:
    brokers: ["127.0.0.1:9092", "127.0.0.2:9092"]
    site: sz
checkpoint:
  dir: ./var/a
`

const sourceExample = `name: kafka-to-sh
source:
  kind: kafka
  kafka:
    brokers: ["127.0.0.1:9092"]
    topics: ["hamal.app.*"]
sink:
  kind: mysql
  addr: 127.0.0.1:3307
  user: root
checkpoint:
  dir: ./var/b
`

func TestDefaults(t *testing.T) {
	cfg, err := registry.Parse([]byte(sinkExample))
	if err != nil {
		t.Fatal(err)
	}
	snk := cfg.Sink.Engine.(*SinkConfig)
	k := snk.Kafka
	if k.Topic != "hamal.{db}.{table}" || k.DDL != "error" || k.DDLTopic != "hamal.{channel}.ddl" || k.Site != "sz" || len(k.Brokers) != 2 {
		t.Fatalf("sink.kafka = %+v", k)
	}
	if ac := snk.ApplierConfig(engine.SinkEnv(cfg, nil)); ac.Channel != "sz-to-kafka" || ac.Site != "sz" || ac.Topic != k.Topic {
		t.Errorf("applier config %+v", ac)
	}
	if snk.Endpoint() != "127.0.0.1:9092,127.0.0.2:9092" {
		t.Errorf("Endpoint() = %q", snk.Endpoint())
	}
	cfg, err = registry.Parse([]byte(sourceExample))
	if err != nil {
		t.Fatal(err)
	}
	src := cfg.Source.Engine.(*SourceConfig)
	if s := src.Kafka; s.Start != "earliest" || s.Rescan != 10*time.Second || s.Topics[0] != "hamal.app.*" || src.StartsAt() != "source.kafka.start=earliest" {
		t.Fatalf("source.kafka = %+v", s)
	}
}

func TestProblems(t *testing.T) {
	cases := []struct {
		name, base, from, to string
		want                 []string
	}{
		{"sink block missing", sinkExample, "  kafka:\n    brokers: [\"127.0.0.1:9092\", \"127.0.0.2:9092\"]\n    site: sz\n", "", []string{"sink.kafka: required"}},
		{"bad broker", sinkExample, `"127.0.0.2:9092"`, `"kafka"`, []string{`sink.kafka.brokers[1]: "kafka" is not host:port`}},
		{"bad ddl", sinkExample, "site: sz", "site: sz\n    ddl: apply", []string{`sink.kafka.ddl: "apply" is not one of error, skip, publish`}},
		{"negative linger", sinkExample, "site: sz", "site: sz\n    linger: -1s", []string{"sink.kafka: linger, max_message_bytes and write_timeout must be positive"}},
		{"unknown key", sinkExample, "site: sz", "site: sz\n    topik: x", []string{`sink.kafka.topik: unknown key`, `did you mean "sink.kafka.topic"`}},
		{"addr with kafka sink", sinkExample, "  kind: kafka\n", "  kind: kafka\n  addr: 127.0.0.1:9092\n", []string{"sink.addr: unknown key for a kafka sink"}},
		{"no topics", sourceExample, "    topics: [\"hamal.app.*\"]\n", "", []string{"source.kafka.topics: required"}},
		{"bad start", sourceExample, "    topics:", "    start: current\n    topics:", []string{`source.kafka.start: "current" is not one of earliest, latest`}},
		{"bad glob", sourceExample, `"hamal.app.*"`, `"hamal.[app"`, []string{`source.kafka.topics[0]: "hamal.[app" is not a topic name or glob`}},
		{"source block missing", sourceExample, "  kafka:\n    brokers: [\"127.0.0.1:9092\"]\n    topics: [\"hamal.app.*\"]\n", "", []string{"source.kafka: required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(tc.base, tc.from, tc.to, 1)
			if text == tc.base {
				t.Fatalf("replacement %q did not apply", tc.from)
			}
			_, err := registry.Parse([]byte(text))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
