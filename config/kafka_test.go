package config

import (
	"strings"
	"testing"
	"time"
)

const kafkaSinkExample = `name: sz-to-kafka
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

const kafkaSourceExample = `name: kafka-to-sh
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

func TestKafkaDefaults(t *testing.T) {
	cfg, err := Parse([]byte(kafkaSinkExample))
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Sink.Kafka
	if k.Topic != "hamal.{db}.{table}" || k.DDL != "error" || k.DDLTopic != "hamal.{channel}.ddl" || k.Site != "sz" || len(k.Brokers) != 2 {
		t.Fatalf("sink.kafka = %+v", k)
	}
	cfg, err = Parse([]byte(kafkaSourceExample))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Source.Kafka; s.Start != "earliest" || s.Rescan != 10*time.Second || s.Topics[0] != "hamal.app.*" {
		t.Fatalf("source.kafka = %+v", s)
	}
}

func TestKafkaProblems(t *testing.T) {
	cases := []struct {
		name, base, from, to string
		want                 []string
	}{
		{"sink block missing", kafkaSinkExample, "  kafka:\n    brokers: [\"127.0.0.1:9092\", \"127.0.0.2:9092\"]\n    site: sz\n", "", []string{"sink.kafka: required"}},
		{"bad broker", kafkaSinkExample, `"127.0.0.2:9092"`, `"kafka"`, []string{`sink.kafka.brokers[1]: "kafka" is not host:port`}},
		{"bad ddl", kafkaSinkExample, "site: sz", "site: sz\n    ddl: apply", []string{`sink.kafka.ddl: "apply" is not one of error, skip, publish`}},
		{"unknown key", kafkaSinkExample, "site: sz", "site: sz\n    topik: x", []string{`sink.kafka.topik: unknown key`, `did you mean "sink.kafka.topic"`}},
		{"addr with kafka sink", kafkaSinkExample, "  kind: kafka\n", "  kind: kafka\n  addr: 127.0.0.1:9092\n", []string{"not used by kind kafka"}},
		{"no topics", kafkaSourceExample, "    topics: [\"hamal.app.*\"]\n", "", []string{"source.kafka.topics: required"}},
		{"bad start", kafkaSourceExample, "    topics:", "    start: current\n    topics:", []string{`source.kafka.start: "current" is not one of earliest, latest`}},
		{"bad glob", kafkaSourceExample, `"hamal.app.*"`, `"hamal.[app"`, []string{`source.kafka.topics[0]: "hamal.[app" is not a topic name or glob`}},
		{"source block missing", kafkaSourceExample, "  kafka:\n    brokers: [\"127.0.0.1:9092\"]\n    topics: [\"hamal.app.*\"]\n", "", []string{"source.kafka: required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(tc.base, tc.from, tc.to, 1)
			if text == tc.base {
				t.Fatalf("replacement %q did not apply", tc.from)
			}
			_, err := Parse([]byte(text))
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
