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
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

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
	DefaultStateTopic      = "hamal.{channel}.state"
	DefaultLinger          = 2 * time.Millisecond
	DefaultMaxMessageBytes = 1 << 20
	DefaultWriteTimeout    = 10 * time.Second
)

// OriginHeader is the header naming the site that first wrote a change.
const OriginHeader = "hamal-origin"

// PathHeader is the header with the sites a change went through (the
// loop guard's path), when the channel has a loop guard.
const PathHeader = "hamal-path"

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
	// Format is the JSON the values are written in: envelope.FormatHamal
	// (default), FormatDebezium, FormatCanal or FormatMaxwell.
	Format envelope.FormatOptions
	// ExactlyOnce publishes each batch in one Kafka transaction together
	// with the channel's replay fence (see doc.go).
	ExactlyOnce bool
	// NoLease publishes with the plain idempotent producer: no
	// transactional id, so no fence against a second process publishing
	// the channel (for Kafka-compatible brokers without transactions).
	// It cannot be combined with ExactlyOnce.
	NoLease bool
	// StateTopic is the template over {channel} of the topic holding the
	// replay fence (exactly-once only).
	StateTopic string
	// Link is the TLS and SASL of every connection to the brokers.
	Link   kafkalink.Link
	Logger *slog.Logger
}

// Sink publishes envelopes to Kafka.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	client *kgo.Client
	enc    envelope.Encoder

	mu     sync.Mutex
	topics map[string]string // namespace → topic

	lease *lease   // nil with Config.NoLease
	eos   *exactly // nil unless Config.ExactlyOnce
}

var _ sink.Sink = (*Sink)(nil)

// pkKey carries a record's partition key in its Context for partitioner.
type pkKey struct{}

// partitioner picks the partition from the envelope's partition key:
// xxhash modulo the partition count (the assignment earlier releases
// made, so a key stays in its partition across an upgrade).
var partitioner = kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
	return func(r *kgo.Record, n int) int {
		pk := r.Key
		if r.Context != nil {
			if v, ok := r.Context.Value(pkKey{}).([]byte); ok {
				pk = v
			}
		}
		return int(xxhash.Sum64(pk) % uint64(n))
	}
})

// Open checks that a broker answers and returns a Sink. Unless NoLease
// it also takes over the channel's transactional id, which fences any
// other process still publishing the channel, and with ExactlyOnce loads
// the replay fence.
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("no brokers configured")
	}
	if cfg.NoLease && cfg.ExactlyOnce {
		return nil, errors.New("exactly-once publishing needs the lease (the transactional id): drop sink.kafka.lease: false or sink.kafka.exactly_once: true")
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.DDLTopic == "" {
		cfg.DDLTopic = DefaultDDLTopic
	}
	if cfg.StateTopic == "" {
		cfg.StateTopic = DefaultStateTopic
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
	enc, err := envelope.NewEncoder(cfg.Format, envelope.Meta{Channel: cfg.Channel, Site: cfg.Site})
	if err != nil {
		return nil, err
	}
	if err := ping(ctx, cfg.Brokers, cfg.Link); err != nil {
		return nil, err
	}
	linkOpts, err := cfg.Link.Opts()
	if err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.RecordPartitioner(partitioner),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxMessageBytes)),
		kgo.MaxBufferedRecords(1 << 16),
		kgo.ProduceRequestTimeout(cfg.WriteTimeout),
		kgo.UnknownTopicRetries(4),
	}, linkOpts...)
	if cfg.AutoCreateTopics {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	s := &Sink{cfg: cfg, log: log, enc: enc, topics: map[string]string{}}
	// A batch the brokers do not take within the delivery timeout fails
	// (transient; with the lease its transaction is aborted) rather than
	// waiting for ever.
	opts = append(opts, kgo.RecordDeliveryTimeout(3*cfg.WriteTimeout))
	if !cfg.NoLease {
		opts = append(opts, kgo.TransactionalID(TransactionalID(cfg.Channel)),
			kgo.TransactionTimeout(time.Minute))
	}
	if s.client, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	if !cfg.NoLease {
		if s.lease, err = openLease(ctx, s); err != nil {
			s.client.Close()
			return nil, err
		}
	}
	if cfg.ExactlyOnce {
		if s.eos, err = openExactly(ctx, s); err != nil {
			s.client.Close()
			return nil, err
		}
	}
	return s, nil
}

// TransactionalID is the Kafka transactional id of a channel's producer
// (unless Config.NoLease): one per channel, so that a second process
// publishing the channel fences the first. It is the sink's lease.
func TransactionalID(channel string) string { return "hamal-" + channel }

// Ping asks the brokers for cluster metadata over a plain link; it fails
// with a transient error when none answers.
func Ping(ctx context.Context, brokers []string) error {
	return ping(ctx, brokers, kafkalink.Link{})
}

// ping asks the brokers for cluster metadata over the link: a TLS or
// SASL refusal is fatal, any other failure transient.
func ping(ctx context.Context, brokers []string, link kafkalink.Link) error {
	// Longer than a dial and TLS handshake (10 s each), so that their
	// errors, which name the cause, come back rather than the deadline.
	ctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	if err := link.Ping(ctx, brokers); err != nil {
		err = fmt.Errorf("kafka brokers %s: %w", strings.Join(brokers, ","), err)
		if errors.Is(err, tlslink.ErrTLS) || errors.Is(err, kafkalink.ErrSASL) {
			return err
		}
		return retry.Transient(err)
	}
	return nil
}

// Close flushes nothing (Apply is synchronous) and closes connections;
// the channel's transactional id stays with the brokers for the next
// process.
func (s *Sink) Close() error {
	s.client.Close()
	return nil
}

// Apply publishes every change of batch through the target protocol
// (sink.Apply, unit.go) and returns once all of them are acknowledged by
// all in-sync replicas (with the lease: once the transaction holding them
// is committed).
func (s *Sink) Apply(ctx context.Context, batch []*event.Txn) error {
	return sink.Apply(ctx, s, batch)
}

// records encodes the changes of batch as records, in batch order.
func (s *Sink) records(batch []*event.Txn, path string, now time.Time) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	for _, txn := range batch {
		switch txn.Kind {
		case event.KindHeartbeat:
			continue
		case event.KindDDL:
			r, ok, err := s.ddl(txn, now)
			if err != nil {
				return nil, err
			}
			if ok {
				recs = append(recs, r)
			}
			continue
		}
		encoded, err := s.enc.Encode(txn, now)
		if err != nil {
			return nil, err
		}
		headers := []kgo.RecordHeader{{Key: OriginHeader, Value: []byte(s.origin(txn))}}
		if path != "" {
			headers = append(headers, kgo.RecordHeader{Key: PathHeader, Value: []byte(path)})
		}
		for _, e := range encoded {
			recs = append(recs, &kgo.Record{
				Topic:     s.topic(e.Schema, e.Table),
				Key:       e.Key,
				Value:     e.Value,
				Headers:   headers,
				Context:   context.WithValue(context.Background(), pkKey{}, e.PartitionKey),
				Timestamp: now,
			})
		}
	}
	return recs, nil
}

func (s *Sink) origin(txn *event.Txn) string {
	if txn.Origin != "" {
		return txn.Origin
	}
	return s.cfg.Site
}

// ddl handles a DDL Txn per Config.DDL.
func (s *Sink) ddl(txn *event.Txn, now time.Time) (*kgo.Record, bool, error) {
	stmt, schema := "", ""
	if txn.DDL != nil {
		stmt, schema = txn.DDL.Statement, txn.DDL.Schema
	}
	switch s.cfg.DDL {
	case DDLSkip:
		s.log.Warn("DDL not published to Kafka (sink.kafka.ddl: skip); apply it to the consumers' targets by hand",
			"position", txn.Pos.String(), "schema", schema, "statement", stmt)
		return nil, false, nil
	case DDLPublish:
		value := envelope.EncodeDDL(txn, envelope.Meta{Channel: s.cfg.Channel, Site: s.cfg.Site}, now)
		topic := strings.ReplaceAll(s.cfg.DDLTopic, "{channel}", s.cfg.Channel)
		return &kgo.Record{Topic: topic, Key: []byte(s.cfg.Channel), Value: value,
			Headers:   []kgo.RecordHeader{{Key: OriginHeader, Value: []byte(s.origin(txn))}},
			Timestamp: now}, true, nil
	}
	return nil, false, fmt.Errorf("DDL cannot be ordered with row messages in Kafka: %q (schema %s); apply it to the consumers' targets, then set sink.kafka.ddl to skip (or publish) and resume",
		stmt, schema)
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

// classify turns a franz-go produce error into a transient or fatal error
// naming the position of the batch and the fix where there is one.
func (s *Sink) classify(cause error) error {
	switch {
	case s.lease != nil && isFenced(cause):
		return fmt.Errorf("%w: another process took the channel's transactional id %s (producer epoch): %w",
			sink.ErrLeaseHeld, TransactionalID(s.cfg.Channel), cause)
	case errors.Is(cause, kerr.UnknownTopicOrPartition):
		if !s.cfg.AutoCreateTopics {
			return fmt.Errorf("publish: %w; create the topics (template %q) or set sink.kafka.auto_create_topics: true", cause, s.cfg.Topic)
		}
		return retry.Transient(fmt.Errorf("publish: %w", cause))
	case errors.Is(cause, kerr.MessageTooLarge), errors.Is(cause, kerr.RecordListTooLarge):
		return fmt.Errorf("publish: %w; a message exceeds sink.kafka.max_message_bytes (%d) or the topic's max.message.bytes: raise both together",
			cause, s.cfg.MaxMessageBytes)
	case errors.Is(cause, kerr.TopicAuthorizationFailed), errors.Is(cause, kerr.ClusterAuthorizationFailed),
		errors.Is(cause, kerr.TransactionalIDAuthorizationFailed), errors.Is(cause, kerr.SaslAuthenticationFailed),
		errors.Is(cause, kerr.InvalidTopicException), errors.Is(cause, kerr.InvalidRequiredAcks),
		errors.Is(cause, kerr.UnsupportedForMessageFormat):
		return fmt.Errorf("publish: %w", s.cfg.Link.Explain(cause))
	}
	return retry.Transient(fmt.Errorf("publish: %w", s.cfg.Link.Explain(cause)))
}
