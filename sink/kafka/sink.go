package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/hamal-replication/hamal/envelope"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/kafkalink"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/tlslink"
)

// DDL handling modes.
const (
	DDLError   = "error"
	DDLSkip    = "skip"
	DDLPublish = "publish"
)

// Defaults.
const (
	DefaultTopic           = "hamal.{db}.{table}"
	DefaultDDLTopic        = "hamal.{channel}.ddl"
	DefaultLinger          = 2 * time.Millisecond
	DefaultMaxMessageBytes = 1 << 20
	DefaultWriteTimeout    = 10 * time.Second
)

// OriginHeader is the header naming the site that first wrote a change.
const OriginHeader = "hamal-origin"

// Config configures a Sink.
type Config struct {
	Brokers          []string // host:port of one or more brokers
	Topic            string   // template over {db}, {table}, {channel}
	DDL              string   // error | skip | publish
	DDLTopic         string   // template over {channel}
	Channel          string
	Site             string // the channel's source site, for source.site
	AutoCreateTopics bool   // let the brokers create missing topics
	Linger           time.Duration
	MaxMessageBytes  int
	WriteTimeout     time.Duration
	// Link is the TLS and SASL of every connection to the brokers.
	Link   kafkalink.Link
	Logger *slog.Logger
}

// Sink publishes envelopes to Kafka.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	writer *kafkago.Writer
	meta   envelope.Meta

	mu     sync.Mutex
	topics map[string]string // namespace → topic
}

var _ sink.Sink = (*Sink)(nil)

// Open checks that a broker answers and returns a Sink.
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("no brokers configured")
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.DDLTopic == "" {
		cfg.DDLTopic = DefaultDDLTopic
	}
	if cfg.DDL == "" {
		cfg.DDL = DDLError
	}
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport, err := cfg.Link.Transport()
	if err != nil {
		return nil, err
	}
	if err := ping(ctx, cfg.Brokers, cfg.Link, transport); err != nil {
		return nil, err
	}
	w := &kafkago.Writer{
		Addr:                   kafkago.TCP(cfg.Brokers...),
		Transport:              transport,
		Balancer:               partitioner{},
		RequiredAcks:           kafkago.RequireAll,
		BatchSize:              10000,
		BatchBytes:             int64(cfg.MaxMessageBytes),
		BatchTimeout:           cfg.Linger,
		WriteTimeout:           cfg.WriteTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		MaxAttempts:            3,
		AllowAutoTopicCreation: cfg.AutoCreateTopics,
	}
	return &Sink{cfg: cfg, log: log, writer: w, topics: map[string]string{},
		meta: envelope.Meta{Channel: cfg.Channel, Site: cfg.Site}}, nil
}

// Ping asks the brokers for cluster metadata over a plain link; it fails
// with a transient error when none answers.
func Ping(ctx context.Context, brokers []string) error {
	t, _ := kafkalink.Link{}.Transport()
	return ping(ctx, brokers, kafkalink.Link{}, t)
}

// ping asks the brokers for cluster metadata over the link: a TLS or
// SASL refusal is fatal, any other failure transient.
func ping(ctx context.Context, brokers []string, link kafkalink.Link, t *kafkago.Transport) error {
	// Longer than a dial and TLS handshake (10 s each), so that their
	// errors, which name the cause, come back rather than the deadline.
	ctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 25 * time.Second, Transport: t}
	if _, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{}}); err != nil {
		err = fmt.Errorf("kafka brokers %s: %w", strings.Join(brokers, ","), link.Explain(err))
		if errors.Is(err, tlslink.ErrTLS) || errors.Is(err, kafkalink.ErrSASL) {
			return err
		}
		return retry.Transient(err)
	}
	return nil
}

// Close flushes nothing (Apply is synchronous) and closes connections.
func (s *Sink) Close() error { return s.writer.Close() }

// Apply publishes every change of batch and returns once all of them are
// acknowledged by all in-sync replicas.
func (s *Sink) Apply(ctx context.Context, batch []*event.Txn) error {
	if len(batch) == 0 {
		return nil
	}
	now := time.Now()
	var msgs []kafkago.Message
	for _, txn := range batch {
		switch txn.Kind {
		case event.KindHeartbeat:
			continue
		case event.KindDDL:
			m, ok, err := s.ddl(txn, now)
			if err != nil {
				return err
			}
			if ok {
				msgs = append(msgs, m)
			}
			continue
		}
		encoded, err := envelope.Encode(txn, s.meta, now)
		if err != nil {
			return fmt.Errorf("publish batch at %s: %w", txn.Pos, err)
		}
		origin := s.origin(txn)
		for _, e := range encoded {
			msgs = append(msgs, kafkago.Message{
				Topic:      s.topic(e.Schema, e.Table),
				Key:        e.Key,
				Value:      e.Value,
				Headers:    []kafkago.Header{{Key: OriginHeader, Value: []byte(origin)}},
				WriterData: e.PartitionKey,
				Time:       now,
			})
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := s.writer.WriteMessages(ctx, msgs...); err != nil {
		return s.classify(ctx, batch[0], err)
	}
	return nil
}

func (s *Sink) origin(txn *event.Txn) string {
	if txn.Origin != "" {
		return txn.Origin
	}
	return s.cfg.Site
}

// ddl handles a DDL Txn per Config.DDL.
func (s *Sink) ddl(txn *event.Txn, now time.Time) (kafkago.Message, bool, error) {
	stmt, schema := "", ""
	if txn.DDL != nil {
		stmt, schema = txn.DDL.Statement, txn.DDL.Schema
	}
	switch s.cfg.DDL {
	case DDLSkip:
		s.log.Warn("DDL not published to Kafka (sink.kafka.ddl: skip); apply it to the consumers' targets by hand",
			"position", txn.Pos.String(), "schema", schema, "statement", stmt)
		return kafkago.Message{}, false, nil
	case DDLPublish:
		value := envelope.EncodeDDL(txn, s.meta, now)
		topic := strings.ReplaceAll(s.cfg.DDLTopic, "{channel}", s.cfg.Channel)
		return kafkago.Message{Topic: topic, Key: []byte(s.cfg.Channel), Value: value,
			Headers:    []kafkago.Header{{Key: OriginHeader, Value: []byte(s.origin(txn))}},
			WriterData: []byte(s.cfg.Channel), Time: now}, true, nil
	}
	return kafkago.Message{}, false, fmt.Errorf("publish batch at %s: DDL cannot be ordered with row messages in Kafka: %q (schema %s); apply it to the consumers' targets, then set sink.kafka.ddl to skip (or publish) and resume",
		txn.Pos, stmt, schema)
}

// topic expands the topic template for one table, cached.
func (s *Sink) topic(schema, table string) string {
	ns := schema + "." + table
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.topics[ns]; ok {
		return t
	}
	t := strings.NewReplacer("{db}", schema, "{table}", table, "{channel}", s.cfg.Channel).Replace(s.cfg.Topic)
	if len(s.topics) >= 65536 {
		clear(s.topics)
	}
	s.topics[ns] = t
	return t
}

// classify turns a kafka-go write error into a transient or fatal error
// naming the position of the batch and the fix where there is one.
func (s *Sink) classify(ctx context.Context, first *event.Txn, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	cause, topic := err, ""
	var werrs kafkago.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil {
				cause = e
				break
			}
		}
	}
	var tooLarge kafkago.MessageTooLargeError
	if errors.As(cause, &tooLarge) {
		topic = tooLarge.Message.Topic
		return fmt.Errorf("publish batch at %s: topic %s: a message of %d bytes exceeds sink.kafka.max_message_bytes (%d); raise it together with the topic's max.message.bytes: %w",
			first.Pos, topic, len(tooLarge.Message.Key)+len(tooLarge.Message.Value), s.cfg.MaxMessageBytes, cause)
	}
	var kerr kafkago.Error
	if errors.As(cause, &kerr) {
		switch kerr {
		case kafkago.UnknownTopicOrPartition:
			if !s.cfg.AutoCreateTopics {
				return fmt.Errorf("publish batch at %s: %w; create the topics (template %q) or set sink.kafka.auto_create_topics: true", first.Pos, cause, s.cfg.Topic)
			}
			return retry.Transient(fmt.Errorf("publish batch at %s: %w", first.Pos, cause))
		case kafkago.MessageSizeTooLarge, kafkago.RecordListTooLarge:
			return fmt.Errorf("publish batch at %s: %w; raise the topic's max.message.bytes or lower sink.kafka.max_message_bytes", first.Pos, cause)
		case kafkago.TopicAuthorizationFailed, kafkago.ClusterAuthorizationFailed, kafkago.SASLAuthenticationFailed,
			kafkago.InvalidTopic, kafkago.InvalidRequiredAcks, kafkago.UnsupportedForMessageFormat:
			return fmt.Errorf("publish batch at %s: %w", first.Pos, cause)
		}
	}
	return retry.Transient(fmt.Errorf("publish batch at %s: %w", first.Pos, cause))
}

// partitioner picks the partition from the envelope's partition key,
// carried in Message.WriterData: xxhash modulo the partition count.
type partitioner struct{}

func (partitioner) Balance(msg kafkago.Message, partitions ...int) int {
	pk, _ := msg.WriterData.([]byte)
	if pk == nil {
		pk = msg.Key
	}
	return partitions[xxhash.Sum64(pk)%uint64(len(partitions))]
}
