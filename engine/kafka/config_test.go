package kafka

import (
	"os"
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
	if ac, _ := snk.ApplierConfig(engine.SinkEnv(cfg, nil)); ac.Channel != "sz-to-kafka" || ac.Site != "sz" || ac.Topic != k.Topic {
		t.Errorf("applier config %+v", ac)
	}
	if k.Format != "hamal" || k.ExactlyOnce || k.StateTopic != "hamal.{channel}.state" {
		t.Errorf("format %q exactly_once %v state_topic %q", k.Format, k.ExactlyOnce, k.StateTopic)
	}
	if ac, _ := snk.ApplierConfig(engine.SinkEnv(cfg, nil)); !k.LeaseOn() || ac.NoLease {
		t.Errorf("sink.kafka.lease defaults to %v (applier NoLease %v), want the lease on", k.LeaseOn(), ac.NoLease)
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
		{"bad format", sinkExample, "site: sz", "site: sz\n    format: avro", []string{`sink.kafka.format: "avro" is not one of hamal, debezium, canal, maxwell`}},
		{"debezium options without debezium", sinkExample, "site: sz", "site: sz\n    format: canal\n    debezium: {schemas: true}", []string{"sink.kafka.debezium: set only with format debezium (format is canal)"}},
		{"bad decimal handling", sinkExample, "site: sz", "site: sz\n    format: debezium\n    debezium: {decimal_handling: exact}", []string{`sink.kafka.debezium.decimal_handling: "exact" is not one of precise, double, string`}},
		{"unknown key", sinkExample, "site: sz", "site: sz\n    topik: x", []string{`sink.kafka.topik: unknown key`, `did you mean "sink.kafka.topic"`}},
		{"addr with kafka sink", sinkExample, "  kind: kafka\n", "  kind: kafka\n  addr: 127.0.0.1:9092\n", []string{"sink.addr: unknown key for a kafka sink"}},
		{"lease false with exactly_once", sinkExample, "site: sz", "site: sz\n    exactly_once: true\n    lease: false", []string{"sink.kafka.lease: false cannot go with sink.kafka.exactly_once: true"}},
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

// TestSecurityKeys: sink.tls / source.tls and kafka.sasl are validated,
// PLAIN without TLS is refused (it sends the password as it is), the SASL
// password is redacted, and the source takes tables and exclude globs.
// TestFormatKeys: format, its Debezium options and exactly_once reach the
// sink's Config.
func TestFormatKeys(t *testing.T) {
	text := strings.Replace(sinkExample, "site: sz", "site: sz\n    format: debezium\n    debezium: {schemas: true, tombstones: false, decimal_handling: string}\n    exactly_once: true\n    state_topic: s.{channel}", 1)
	cfg, err := registry.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ac, err := cfg.Sink.Engine.(*SinkConfig).ApplierConfig(engine.SinkEnv(cfg, nil))
	if err != nil {
		t.Fatal(err)
	}
	if f := ac.Format; f.Name != "debezium" || !f.Schemas || !f.NoTombstones || f.DecimalHandling != "string" || !ac.ExactlyOnce || ac.StateTopic != "s.{channel}" {
		t.Errorf("applier config %+v", ac)
	}
}

// TestLeaseKey: sink.kafka.lease: false reaches the sink as NoLease.
func TestLeaseKey(t *testing.T) {
	cfg, err := registry.Parse([]byte(strings.Replace(sinkExample, "site: sz", "site: sz\n    lease: false", 1)))
	if err != nil {
		t.Fatal(err)
	}
	ac, err := cfg.Sink.Engine.(*SinkConfig).ApplierConfig(engine.SinkEnv(cfg, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !ac.NoLease || ac.ExactlyOnce {
		t.Errorf("lease: false gave NoLease %v ExactlyOnce %v, want NoLease", ac.NoLease, ac.ExactlyOnce)
	}
}

func TestSecurityKeys(t *testing.T) {
	dir := t.TempDir()
	pwFile := dir + "/pw"
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sink := func(extra, sasl string) string {
		s := strings.Replace(sinkExample, "    site: sz\n", "    site: sz\n"+sasl, 1)
		return strings.Replace(s, "  kind: kafka\n", "  kind: kafka\n"+extra, 1)
	}
	for _, tc := range []struct{ name, text, err string }{
		{"scram without tls", sink("", "    sasl: {mechanism: SCRAM-SHA-512, user: u, password: p}\n"), ""},
		{"plain with tls", sink("  tls: {enabled: true}\n", "    sasl: {mechanism: PLAIN, user: u, password_file: "+pwFile+"}\n"), ""},
		{"plain without tls", sink("", "    sasl: {mechanism: PLAIN, user: u, password: p}\n"), "sink.kafka.sasl: mechanism PLAIN sends the password as it is, and sink.tls is off"},
		{"unknown mechanism", sink("", "    sasl: {mechanism: GSSAPI, user: u}\n"), `sink.kafka.sasl.mechanism: "GSSAPI" is not one of`},
		{"no user", sink("", "    sasl: {mechanism: SCRAM-SHA-256}\n"), "sink.kafka.sasl.user: required"},
		{"sasl typo", sink("", "    sasl: {mechanism: SCRAM-SHA-256, username: u}\n"), `sink.kafka.sasl.username: unknown key`},
		{"source tables", strings.Replace(sourceExample, "  kind: kafka\n", "  kind: kafka\n  tables: [\"app.*\"]\n  exclude: [\"app.secret\"]\n", 1), ""},
		{"source bad glob", strings.Replace(sourceExample, "  kind: kafka\n", "  kind: kafka\n  tables: [\"app\"]\n", 1), `source.tables[0]: "app" is not a schema.table glob`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := registry.Parse([]byte(tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if snk, ok := cfg.Sink.Engine.(*SinkConfig); ok && snk.Kafka.SASL != nil {
				red := cfg.Redacted().Sink.Engine.(*SinkConfig).Kafka.SASL
				if red.Password != "***" || snk.Kafka.SASL.Password == "***" || snk.Kafka.SASL.Password == "" {
					t.Errorf("password %q, redacted %q", snk.Kafka.SASL.Password, red.Password)
				}
				l, err := snk.Link()
				if err != nil || l.SASL == nil || l.SASLKey != "sink.kafka.sasl" || (snk.TLS.Enabled != (l.TLS != nil)) {
					t.Errorf("link %+v %v", l, err)
				}
			}
		})
	}
}
