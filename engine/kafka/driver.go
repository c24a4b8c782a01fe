package kafka

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/envelope"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/kafkalink"
	"github.com/hamal-replication/hamal/sink"
	sinkkafka "github.com/hamal-replication/hamal/sink/kafka"
	"github.com/hamal-replication/hamal/source"
	srckafka "github.com/hamal-replication/hamal/source/kafka"
	"github.com/hamal-replication/hamal/tlslink"
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
	// TLS encrypts every connection to the brokers; on means required.
	TLS config.TLS `yaml:"tls"`
}

// SASL is the kafka.sasl block: the login to the brokers.
type SASL struct {
	Mechanism    string `yaml:"mechanism"` // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
	User         string `yaml:"user"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
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
	SASL             *SASL         `yaml:"sasl"`               // nil: no SASL
	// Format is the JSON of the values: hamal (default), debezium, canal
	// or maxwell (docs/kafka.md).
	Format   string    `yaml:"format"`
	Debezium *Debezium `yaml:"debezium"` // options of format debezium
	// ExactlyOnce publishes every batch in one Kafka transaction with the
	// channel's replay fence; read the topics with isolation.level
	// read_committed.
	ExactlyOnce bool   `yaml:"exactly_once"`
	StateTopic  string `yaml:"state_topic"` // template over {channel}; default hamal.{channel}.state
	// Lease (default true) publishes every batch as a transaction of the
	// channel's transactional id, which fences a second process; false is
	// the plain idempotent producer with no fence, for Kafka-compatible
	// brokers without transactions. exactly_once needs it.
	Lease *bool `yaml:"lease"`
}

// LeaseOn reports whether the sink is fenced by the transactional id
// (sink.kafka.lease, default true).
func (k *Sink) LeaseOn() bool { return k.Lease == nil || *k.Lease }

// Debezium holds the keys under sink.kafka.debezium: the Debezium
// connector and JSON converter options users commonly change.
type Debezium struct {
	Schemas         bool   `yaml:"schemas"`          // {schema, payload} like schemas.enable=true; default false
	Tombstones      *bool  `yaml:"tombstones"`       // tombstones.on.delete; default true
	DecimalHandling string `yaml:"decimal_handling"` // precise (default) | double | string
}

// SourceConfig is the source block of kind kafka.
type SourceConfig struct {
	Kafka *Source `yaml:"kafka"`
	// TLS encrypts every connection to the brokers; on means required.
	TLS config.TLS `yaml:"tls"`
	// Tables and Exclude select the tables applied (globs on
	// schema.table, as a MySQL source's); Hamal's own schema is never
	// applied, whatever an envelope names.
	Tables  []string `yaml:"tables"`
	Exclude []string `yaml:"exclude"`
	// HamalSchema is the schema of Hamal's tables on the target (the
	// sink's hamal_schema), which no envelope may write.
	HamalSchema string `yaml:"hamal_schema"`
}

// Source holds the keys under source.kafka.
type Source struct {
	Brokers []string `yaml:"brokers"` // host:port, one or more
	// Topics are topic names or globs ("hamal.app.*"), matched against the
	// cluster's topics at start and every rescan interval.
	Topics []string      `yaml:"topics"`
	Start  string        `yaml:"start"`  // earliest | latest, for partitions without a checkpoint; default earliest
	Rescan time.Duration `yaml:"rescan"` // how often to look for new topics and partitions; default 10s
	SASL   *SASL         `yaml:"sasl"`   // nil: no SASL
	// Format is the JSON of the messages: hamal (default), debezium,
	// canal or maxwell (docs/kafka.md).
	Format string `yaml:"format"`
	// Transactions is each (default: a message is a transaction) or whole
	// (a source transaction applies atomically once all of it arrived).
	Transactions      string `yaml:"transactions"`
	TransactionBuffer int    `yaml:"transaction_buffer"` // messages held for incomplete transactions; default 10000
}

var (
	_ engine.SourceConfig = (*SourceConfig)(nil)
	_ engine.SinkConfig   = (*SinkConfig)(nil)
	_ config.Redactor     = (*SourceConfig)(nil)
	_ config.Redactor     = (*SinkConfig)(nil)
)

// validate checks the sasl block under s (the kafka scope).
func (a *SASL) validate(s *config.Scope) {
	if a == nil {
		return
	}
	s = s.Sub("sasl")
	switch a.Mechanism {
	case kafkalink.Plain, kafkalink.ScramSHA256, kafkalink.ScramSHA512:
	case "":
		s.Bad("%s: required: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Key("mechanism"))
	default:
		s.Bad("%s: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", s.Key("mechanism"), a.Mechanism)
	}
	if a.User == "" {
		s.Bad("%s: required", s.Key("user"))
	}
	s.Secret(&a.Password, a.PasswordFile)
}

// link is the side's kafkalink.Link: TLS from the tls block, SASL from
// kafka.sasl.
func link(side string, t config.TLS, a *SASL) (kafkalink.Link, error) {
	cfg, err := t.Config("")
	if err != nil {
		return kafkalink.Link{}, fmt.Errorf("%s.tls: %w", side, err)
	}
	l := kafkalink.Link{TLS: cfg, TLSKey: side + ".tls", SASLKey: side + ".kafka.sasl"}
	if a != nil {
		l.SASL = &kafkalink.SASL{Mechanism: a.Mechanism, User: a.User, Password: a.Password}
	}
	return l, nil
}

// checkLink reports a link that would send a secret in clear (PLAIN
// without TLS).
func checkLink(s *config.Scope, side string, t config.TLS, a *SASL) {
	if a == nil || a.Mechanism == "" {
		return
	}
	l, err := link(side, t, a)
	if err != nil {
		return // the tls block's own problems are reported
	}
	if err := l.Validate(); err != nil {
		s.Bad("%v", err)
	}
}

func redactSASL(a *SASL) *SASL {
	if a == nil || a.Password == "" {
		return a
	}
	r := *a
	r.Password = "***"
	return &r
}

// Redacted implements config.Redactor.
func (c *SinkConfig) Redacted() config.Block {
	r := *c
	if c.Kafka != nil {
		k := *c.Kafka
		k.SASL = redactSASL(k.SASL)
		r.Kafka = &k
	}
	return &r
}

// Redacted implements config.Redactor.
func (c *SourceConfig) Redacted() config.Block {
	r := *c
	if c.Kafka != nil {
		k := *c.Kafka
		k.SASL = redactSASL(k.SASL)
		r.Kafka = &k
	}
	return &r
}

// Validate implements config.Block.
func (c *SinkConfig) Validate(s *config.Scope) {
	k := c.Kafka
	if k == nil {
		s.Bad("%s: required for kind kafka, e.g. %s: {brokers: [\"127.0.0.1:9092\"]}", s.Key("kafka"), s.Key("kafka"))
		return
	}
	side := s
	s.TLS("tls", &c.TLS)
	s = s.Sub("kafka")
	k.SASL.validate(s)
	checkLink(side, "sink", c.TLS, k.SASL)
	checkBrokers(s, k.Brokers)
	if k.Topic == "" {
		k.Topic = "hamal.{db}.{table}"
	}
	s.OneOf("ddl", &k.DDL, "error", "skip", "publish")
	if k.DDLTopic == "" {
		k.DDLTopic = "hamal.{channel}.ddl"
	}
	s.OneOf("format", &k.Format, "hamal", "debezium", "canal", "maxwell")
	if d := k.Debezium; d != nil {
		if k.Format != "debezium" {
			s.Bad("%s: set only with format debezium (format is %s)", s.Key("debezium"), k.Format)
		}
		s.Sub("debezium").OneOf("decimal_handling", &d.DecimalHandling, "precise", "double", "string")
	}
	if k.StateTopic == "" {
		k.StateTopic = "hamal.{channel}.state"
	}
	if k.ExactlyOnce && !k.LeaseOn() {
		s.Bad("%s: false cannot go with %s: true (exactly-once needs the transactional id, which is the lease); drop one of them",
			s.Key("lease"), s.Key("exactly_once"))
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
	side := s
	s.TLS("tls", &c.TLS)
	s.Globs("tables", c.Tables)
	s.Globs("exclude", c.Exclude)
	if c.HamalSchema == "" {
		c.HamalSchema = srckafka.DefaultHamalSchema
	}
	s = s.Sub("kafka")
	k.SASL.validate(s)
	checkLink(side, "source", c.TLS, k.SASL)
	checkBrokers(s, k.Brokers)
	if len(k.Topics) == 0 {
		s.Bad("%s: required; topic names or globs, e.g. [\"hamal.app.*\"]", s.Key("topics"))
	}
	for i, tp := range k.Topics {
		if _, err := path.Match(tp, "x"); err != nil || tp == "" {
			s.Bad("%s[%d]: %q is not a topic name or glob", s.Key("topics"), i, tp)
		}
	}
	s.OneOf("start", &k.Start, "earliest", "latest")
	s.OneOf("format", &k.Format, "hamal", "debezium", "canal", "maxwell")
	s.OneOf("transactions", &k.Transactions, "each", "whole")
	if k.TransactionBuffer < 0 {
		s.Bad("%s: must be positive, e.g. 10000", s.Key("transaction_buffer"))
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

// ReaderConfig is the block as source/kafka's Config, TLS and SASL
// included.
func (c *SourceConfig) ReaderConfig(env engine.Env) (srckafka.Config, error) {
	k := c.Kafka
	l, err := c.Link()
	if err != nil {
		return srckafka.Config{}, err
	}
	return srckafka.Config{Brokers: k.Brokers, Topics: k.Topics, Start: k.Start, Rescan: k.Rescan,
		Tables: c.Tables, Exclude: c.Exclude, HamalSchema: c.HamalSchema, Format: k.Format, Transactions: k.Transactions, TransactionBuffer: k.TransactionBuffer, Link: l, Logger: env.Logger}, nil
}

// Open implements engine.SourceConfig.
func (c *SourceConfig) Open(ctx context.Context, env engine.Env, resume event.Position) (source.Source, error) {
	rc, err := c.ReaderConfig(env)
	if err != nil {
		return nil, err
	}
	return srckafka.Open(ctx, rc, resume)
}

// Link is the source's TLS and SASL to its brokers.
func (c *SourceConfig) Link() (kafkalink.Link, error) { return link("source", c.TLS, c.Kafka.SASL) }

// Check implements engine.SourceConfig: a broker answers, over TLS and
// with the SASL login when configured.
func (c *SourceConfig) Check(ctx context.Context, env engine.Env, r *engine.Report) {
	checkBrokersReach(ctx, r, "source", c.Link, c.Kafka.Brokers, c.Endpoint())
}

// checkBrokersReach is the brokers' part of hamal check for a side.
func checkBrokersReach(ctx context.Context, r *engine.Report, side string, mk func() (kafkalink.Link, error), brokers []string, endpoint string) bool {
	l, err := mk()
	if err != nil {
		r.Fail(err.Error(), "fix "+side+".tls")
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := l.Ping(ctx, brokers); err != nil {
		fix := "check " + side + ".kafka.brokers and that the brokers listen there"
		var te *tlslink.Error
		switch {
		case errors.As(err, &te):
			fix = te.Fix
		case errors.Is(err, kafkalink.ErrSASL):
			fix = "check " + side + ".kafka.sasl (mechanism, user, password) against the brokers' users"
		}
		r.Fail(fmt.Sprintf("%s %v", side, err), fix)
		return false
	}
	how := ""
	if l.TLS != nil {
		how += " over TLS"
	}
	if l.SASL != nil {
		how += " with SASL " + l.SASL.Mechanism
	}
	r.OK("%s Kafka brokers %s reachable%s", side, endpoint, how)
	return true
}

// StartsAt implements engine.SourceConfig.
func (c *SourceConfig) StartsAt() string { return "source.kafka.start=" + c.Kafka.Start }

// Endpoint implements engine.SourceConfig.
func (c *SourceConfig) Endpoint() string { return strings.Join(c.Kafka.Brokers, ",") }

// ApplierConfig is the block as sink/kafka's Config, TLS and SASL
// included.
func (c *SinkConfig) ApplierConfig(env engine.Env) (sinkkafka.Config, error) {
	k := c.Kafka
	l, err := c.Link()
	if err != nil {
		return sinkkafka.Config{}, err
	}
	return sinkkafka.Config{Brokers: k.Brokers, Topic: k.Topic, DDL: k.DDL, DDLTopic: k.DDLTopic, Channel: env.Channel,
		Site: k.Site, AutoCreateTopics: k.AutoCreateTopics, Linger: k.Linger, MaxMessageBytes: k.MaxMessageBytes,
		WriteTimeout: k.WriteTimeout, ExactlyOnce: k.ExactlyOnce, StateTopic: k.StateTopic, NoLease: !k.LeaseOn(),
		Format: k.FormatOptions(), Link: l, Logger: env.Logger}, nil
}

// FormatOptions are the format keys as envelope.FormatOptions.
func (k *Sink) FormatOptions() envelope.FormatOptions {
	o := envelope.FormatOptions{Name: k.Format}
	if d := k.Debezium; d != nil {
		o.Schemas, o.DecimalHandling = d.Schemas, d.DecimalHandling
		o.NoTombstones = d.Tombstones != nil && !*d.Tombstones
	}
	return o
}

// Open implements engine.SinkConfig.
func (c *SinkConfig) Open(ctx context.Context, env engine.Env) (sink.Sink, error) {
	sc, err := c.ApplierConfig(env)
	if err != nil {
		return nil, err
	}
	return sinkkafka.Open(ctx, sc)
}

// Link is the sink's TLS and SASL to its brokers.
func (c *SinkConfig) Link() (kafkalink.Link, error) { return link("sink", c.TLS, c.Kafka.SASL) }

// Check implements engine.SinkConfig: a broker answers, over TLS and with
// the SASL login when configured.
func (c *SinkConfig) Check(ctx context.Context, env engine.Env, r *engine.Report) {
	k := c.Kafka
	if checkBrokersReach(ctx, r, "sink", c.Link, k.Brokers, c.Endpoint()) {
		r.OK("sink topics %q (auto-create %v), format %s, DDL %s, exactly-once %v, lease %v", k.Topic, k.AutoCreateTopics, k.Format, k.DDL, k.ExactlyOnce, k.LeaseOn())
	}
}

// Endpoint implements engine.SinkConfig.
func (c *SinkConfig) Endpoint() string { return strings.Join(c.Kafka.Brokers, ",") }
