package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hamal-replication/hamal/envelope"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/kafkalink"
	"github.com/hamal-replication/hamal/loopguard"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/source"
	"github.com/hamal-replication/hamal/tlslink"
)

// Start modes for partitions a channel has never read.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

// DefaultRescan is how often topics are matched again by default.
const DefaultRescan = 10 * time.Second

// Config configures a Source.
type Config struct {
	Brokers []string
	Topics  []string // names or path.Match globs
	// Start applies to the partitions found at a channel's first start (no
	// checkpoint): earliest or latest. Partitions that appear later always
	// start at their earliest offset.
	Start  string
	Rescan time.Duration
	// Tables and Exclude select the tables applied (schema.table globs;
	// Tables empty: all); a change of HamalSchema (default "hamal") is
	// never applied. Other changes become heartbeats that move the
	// offsets.
	Tables, Exclude []string
	HamalSchema     string
	// Transactions is "each" (default: every message is its own Txn) or
	// "whole" (a source transaction is one Txn, once all of its messages
	// arrived; whole.go). TransactionBuffer bounds the messages held for
	// incomplete transactions (default 10000).
	Transactions      string
	TransactionBuffer int
	// Format is the JSON of the messages: hamal (default), debezium,
	// canal or maxwell (envelope.NewChangeDecoder).
	Format string
	// Link is the TLS and SASL of every connection to the brokers.
	Link   kafkalink.Link
	Logger *slog.Logger
}

// OriginHeader is the header naming the site that first wrote a change
// (every format Hamal publishes carries it).
const OriginHeader = "hamal-origin"

// PathHeader is the header with the loop guard's path of a change.
const PathHeader = "hamal-path"

// ErrPurged marks a checkpointed offset that the brokers no longer hold.
var ErrPurged = errors.New("offset no longer available")

type fetched struct {
	tp  topicPartition
	msg *kgo.Record
	err error
}

// Source reads envelopes from Kafka partitions.
type Source struct {
	cfg    Config
	log    *slog.Logger
	client *kafkago.Client // metadata and offsets
	opts   []kgo.Opt       // the consumer's, over Config.Link
	dec    envelope.ChangeDecoder
	filter tableFilter
	// refused counts envelopes naming Hamal's own schema (Next's
	// goroutine only).
	refused int

	// offsets is the next offset per partition as of the last Txn Next
	// returned; only Next's goroutine touches it after Open.
	offsets map[topicPartition]int64

	posMu sync.Mutex
	pos   event.Position

	ctx    context.Context // reader goroutines; cancelled by Close
	cancel context.CancelFunc
	msgs   chan fetched

	// consumer fetches every partition read (franz-go, read_committed:
	// neither control records nor what a transaction aborted reach Next).
	// It is created with the first partition; mu guards it and readers.
	mu       sync.Mutex
	consumer *kgo.Client
	readers  map[topicPartition]bool
	wg       sync.WaitGroup
	once     sync.Once

	whole *assembler // Config.Transactions "whole"
}

var _ source.Source = (*Source)(nil)

// Open resolves the topics and partitions to read and starts reading them
// at resume (nil: the first start, at Config.Start).
func Open(ctx context.Context, cfg Config, resume event.Position) (*Source, error) {
	if len(cfg.Brokers) == 0 || len(cfg.Topics) == 0 {
		return nil, errors.New("kafka source needs brokers and topics")
	}
	if cfg.Start == "" {
		cfg.Start = StartEarliest
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = DefaultRescan
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	offsets := map[topicPartition]int64{}
	if resume != nil {
		var err error
		if offsets, err = parsePosition(resume); err != nil {
			return nil, err
		}
	}
	dec, err := envelope.NewChangeDecoder(cfg.Format)
	if err != nil {
		return nil, err
	}
	var whole *assembler
	switch cfg.Transactions {
	case "", TransactionsEach:
	case TransactionsWhole:
		if cfg.TransactionBuffer <= 0 {
			cfg.TransactionBuffer = DefaultTransactionBuffer
		}
		whole = newAssembler(cfg.TransactionBuffer)
	default:
		return nil, fmt.Errorf("transactions %q is not one of each, whole", cfg.Transactions)
	}
	transport, err := cfg.Link.Transport()
	if err != nil {
		return nil, err
	}
	linkOpts, err := cfg.Link.Opts()
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, log: log, dec: dec, whole: whole, filter: newTableFilter(cfg), offsets: offsets,
		client:  &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Timeout: 25 * time.Second, Transport: transport},
		msgs:    make(chan fetched, 1024),
		readers: map[topicPartition]bool{},
		opts: append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...),
			// What a transaction aborted (a fenced or killed publisher's
			// batch) must never be applied.
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.FetchMaxBytes(16 << 20), kgo.FetchMaxWait(250 * time.Millisecond),
			// An offset the brokers no longer hold is an error (ErrPurged),
			// never a silent jump.
			kgo.ConsumeResetOffset(kgo.NoResetOffset())}, linkOpts...)}
	parts, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		log.Warn("no Kafka topic matches source.kafka.topics yet; looking again every rescan interval",
			"topics", strings.Join(cfg.Topics, ","), "rescan", cfg.Rescan)
	}
	ranges, err := s.listOffsets(ctx, parts)
	if err != nil {
		return nil, err
	}
	starts := make(map[topicPartition]int64, len(parts))
	for _, tp := range parts {
		r := ranges[tp]
		off, ok := offsets[tp]
		switch {
		case ok && off < r.first:
			return nil, fmt.Errorf("partition %s: checkpointed offset %d is below the earliest offset %d (deleted by retention): %w; the messages in between are lost to this channel, so resync the target and start a new channel",
				tp, off, r.first, ErrPurged)
		case ok && off > r.last:
			return nil, fmt.Errorf("partition %s: checkpointed offset %d is beyond the end %d; the topic was recreated or truncated: resync the target and start a new channel", tp, off, r.last)
		case ok:
		case resume == nil && cfg.Start == StartLatest:
			off = r.last
		default:
			off = r.first
		}
		offsets[tp] = off
		starts[tp] = off
	}
	s.pos = encodePosition(offsets)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, tp := range parts {
		s.startReader(tp, starts[tp])
	}
	s.wg.Add(1)
	go s.rescanLoop()
	log.Info("kafka source open", "partitions", len(parts), "position", s.pos.String())
	return s, nil
}

// discover lists the partitions of every topic matching Config.Topics.
func (s *Source) discover(ctx context.Context) ([]topicPartition, error) {
	// Longer than a dial and TLS handshake (10 s each), whose errors name
	// the cause.
	ctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	md, err := s.client.Metadata(ctx, &kafkago.MetadataRequest{})
	if err != nil {
		err = fmt.Errorf("kafka brokers %s: metadata: %w", strings.Join(s.cfg.Brokers, ","), s.cfg.Link.Explain(err))
		if errors.Is(err, tlslink.ErrTLS) || errors.Is(err, kafkalink.ErrSASL) {
			return nil, err // refused as configured: fatal
		}
		return nil, retry.Transient(err)
	}
	var parts []topicPartition
	for _, t := range md.Topics {
		if t.Internal || t.Error != nil || !s.matches(t.Name) {
			continue
		}
		for _, p := range t.Partitions {
			parts = append(parts, topicPartition{t.Name, p.ID})
		}
	}
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].topic != parts[j].topic {
			return parts[i].topic < parts[j].topic
		}
		return parts[i].partition < parts[j].partition
	})
	return parts, nil
}

func (s *Source) matches(topic string) bool {
	for _, pattern := range s.cfg.Topics {
		if ok, _ := path.Match(pattern, topic); ok {
			return true
		}
	}
	return false
}

type offsetRange struct{ first, last int64 }

// listOffsets returns the earliest and the next-to-be-written offset of
// each partition.
func (s *Source) listOffsets(ctx context.Context, parts []topicPartition) (map[topicPartition]offsetRange, error) {
	out := make(map[topicPartition]offsetRange, len(parts))
	if len(parts) == 0 {
		return out, nil
	}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, tp := range parts {
		req.Topics[tp.topic] = append(req.Topics[tp.topic], kafkago.FirstOffsetOf(tp.partition), kafkago.LastOffsetOf(tp.partition))
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := s.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, retry.Transient(fmt.Errorf("kafka list offsets: %w", err))
	}
	for topic, pos := range resp.Topics {
		for _, po := range pos {
			if po.Error != nil {
				return nil, retry.Transient(fmt.Errorf("kafka list offsets of %s/%d: %w", topic, po.Partition, po.Error))
			}
			out[topicPartition{topic, po.Partition}] = offsetRange{first: po.FirstOffset, last: po.LastOffset}
		}
	}
	for _, tp := range parts {
		if _, ok := out[tp]; !ok {
			return nil, retry.Transient(fmt.Errorf("kafka list offsets: no answer for %s", tp))
		}
	}
	return out, nil
}

// startReader has the consumer fetch one partition from offset on, in
// order, into msgs; the first partition creates the consumer and its
// poll loop.
func (s *Source) startReader(tp topicPartition, offset int64) {
	parts := map[string]map[int32]kgo.Offset{tp.topic: {int32(tp.partition): kgo.NewOffset().At(offset)}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil || s.readers[tp] { // closed meanwhile, or read already
		return
	}
	if s.consumer != nil {
		s.consumer.AddConsumePartitions(parts)
		s.readers[tp] = true
		return
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), s.opts...), kgo.ConsumePartitions(parts))...)
	if err != nil {
		go s.deliver(fetched{tp: tp, err: err})
		return
	}
	s.consumer = cl
	s.readers[tp] = true
	s.wg.Add(1)
	go s.poll(cl)
}

// poll delivers the consumer's records, in order per partition, and its
// errors, until Close.
func (s *Source) poll(cl *kgo.Client) {
	defer s.wg.Done()
	for {
		fs := cl.PollFetches(s.ctx)
		if s.ctx.Err() != nil {
			return
		}
		ok := true
		fs.EachError(func(topic string, partition int32, err error) {
			if ok && !errors.Is(err, context.Canceled) {
				ok = s.deliver(fetched{tp: topicPartition{topic, int(partition)}, err: err})
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if ok {
				ok = s.deliver(fetched{tp: topicPartition{r.Topic, int(r.Partition)}, msg: r})
			}
		})
		if !ok {
			return
		}
	}
}

func (s *Source) deliver(f fetched) bool {
	select {
	case s.msgs <- f:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// rescanLoop starts readers for partitions that appeared since Open, at
// their earliest offset.
func (s *Source) rescanLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.Rescan)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		parts, err := s.discover(s.ctx)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("kafka rescan failed; keeping the current partitions", "err", err)
			}
			continue
		}
		var fresh []topicPartition
		s.mu.Lock()
		for _, tp := range parts {
			if _, ok := s.readers[tp]; !ok {
				fresh = append(fresh, tp)
			}
		}
		s.mu.Unlock()
		if len(fresh) == 0 {
			continue
		}
		ranges, err := s.listOffsets(s.ctx, fresh)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("kafka rescan failed; keeping the current partitions", "err", err)
			}
			continue
		}
		for _, tp := range fresh {
			s.log.Info("kafka source: new partition", "partition", tp.String(), "offset", ranges[tp].first)
			s.startReader(tp, ranges[tp].first)
		}
	}
}

// Next returns the next message as a one-change Txn, or with
// Config.Transactions "whole" the next complete source transaction
// (whole.go).
func (s *Source) Next(ctx context.Context) (*event.Txn, error) {
	if s.whole != nil {
		return s.nextWhole(ctx)
	}
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	pos := encodePosition(s.offsets)
	s.setPos(pos)
	if m.change == nil {
		return &event.Txn{Pos: pos, CommitTime: m.src.CommitTime(), Kind: event.KindHeartbeat}, nil
	}
	return &event.Txn{Pos: pos, Origin: m.origin, Path: m.path, CommitTime: m.src.CommitTime(), Kind: event.KindDML,
		Changes: []event.Change{*m.change}}, nil
}

func (s *Source) setPos(pos event.Position) {
	s.posMu.Lock()
	s.pos = pos
	s.posMu.Unlock()
}

// message is one decoded message; change is nil when it applies nothing
// (a tombstone, or a table the filter leaves out).
type message struct {
	tp     topicPartition
	offset int64
	change *event.Change
	src    envelope.Source
	origin string
	path   []string
	noTxn  bool // a tombstone: in no transaction
}

// read takes the next fetched message, decodes it and moves the
// partition's next offset past it.
func (s *Source) read(ctx context.Context) (message, error) {
	var f fetched
	select {
	case <-ctx.Done():
		return message{}, ctx.Err()
	case <-s.ctx.Done():
		return message{}, errors.New("kafka source closed")
	case f = <-s.msgs:
	}
	if f.err != nil {
		if errors.Is(f.err, kerr.OffsetOutOfRange) {
			return message{}, fmt.Errorf("partition %s at offset %d: %w (%v); the brokers deleted messages this channel has not applied: resync the target and start a new channel",
				f.tp, s.offsets[f.tp], ErrPurged, f.err)
		}
		return message{}, retry.Transient(fmt.Errorf("kafka partition %s: %w", f.tp, f.err))
	}
	m := f.msg
	change, src, err := s.dec.Decode(m.Key, m.Value)
	if err != nil && !errors.Is(err, envelope.ErrTombstone) {
		return message{}, fmt.Errorf("message %s@%d: %w", f.tp, m.Offset, err)
	}
	s.offsets[f.tp] = m.Offset + 1
	out := message{tp: f.tp, offset: m.Offset, src: src}
	if err != nil { // a tombstone: nothing to apply, the offset moves
		out.noTxn = true
		return out, nil
	}
	out.origin = src.TxnOrigin()
	for _, h := range m.Headers {
		switch {
		case h.Key == OriginHeader && len(h.Value) > 0:
			out.origin = string(h.Value)
		case h.Key == PathHeader && len(h.Value) > 0:
			out.path = loopguard.ParsePath(string(h.Value))
		}
	}
	if v := s.filter.judge(&change); v != keep {
		if v == hamalTable {
			s.refused++
			s.log.Warn("kafka source: an envelope names a table of Hamal's own schema; not applied",
				"partition", f.tp.String(), "offset", m.Offset, "table", change.Namespace, "refused_so_far", s.refused)
		}
		return out, nil
	}
	out.change = &change
	return out, nil
}

// Position returns the offsets after the last Txn returned, or the
// resolved start offsets before the first.
func (s *Source) Position() event.Position {
	s.posMu.Lock()
	defer s.posMu.Unlock()
	return s.pos
}

// Close stops every reader; a blocked Next returns an error.
func (s *Source) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.mu.Lock()
		if s.consumer != nil {
			s.consumer.Close()
		}
		s.mu.Unlock()
	})
	return nil
}
