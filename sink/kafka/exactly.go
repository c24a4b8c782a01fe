package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
)

// Exactly-once publishing.
//
// Every Apply is one Kafka transaction of the transactional id
// TransactionalID(channel): the batch's messages plus one marker record in
// the channel's state topic (one partition), committed together. A
// read_committed consumer therefore sees a batch whole or not at all.
//
// What makes a replay after kill -9 publish nothing twice is the replay
// fence. The channel's checkpoint (in Hamal's own store) trails what is
// in Kafka: Txns committed to Kafka after the last saved checkpoint are
// read again from the source after a restart. Each marker names the
// Txns its transaction published (their fence keys, see fenceKey, with
// the session's seq) and the seq of the last checkpoint the channel had
// saved (Persisted). After a restart the sink reads back the markers
// that still matter, and Apply drops every replayed Txn whose key is in
// that set: the fence. A replayed Txn is read within span seqs of the
// restart (span = the highest published seq minus the last saved one,
// since a session's seqs count every Txn from its checkpoint); once the
// channel saved a checkpoint past span, the fence can no longer match
// and is dropped.
//
// The fence is written at open, as the session's snapshot marker, in its
// own transaction, so a marker never has to repeat it; the markers after
// it carry only their own keys and the offset (From) of the oldest
// marker still needed, which bounds what a restart reads back to the
// Txns published since the checkpoint.
//
// Fencing is the sink's lease (lease.go), which exactly-once shares with
// at-least-once: the transactional id, taken over at open, whose producer
// epoch the broker checks at every commit.

// marker is the value of a state-topic record.
type marker struct {
	Channel   string   `json:"channel"`
	Session   string   `json:"session"`
	Txn       uint64   `json:"txn"`       // 0: the session's snapshot marker
	Persisted uint64   `json:"persisted"` // seq of the session's last saved checkpoint
	MaxSeq    uint64   `json:"max_seq"`   // highest seq the session published
	From      int64    `json:"from"`      // offset of the oldest marker still needed; -1: this one
	CarryLeft uint64   `json:"carry_left"`
	Carry     []string `json:"carry,omitempty"`   // snapshot marker: the fence taken over
	Entries   []entry  `json:"entries,omitempty"` // keys published by this transaction
}

type entry struct {
	Key string `json:"k"`
	Seq uint64 `json:"s"`
}

type liveEntry struct {
	seq    uint64
	offset int64 // of the marker that holds it
}

// exactly is the transactional state of an exactly-once Sink.
type exactly struct {
	s     *Sink
	topic string // the state topic

	txnNo   uint64
	session string

	fmu        sync.Mutex // guards what follows
	carry      map[string]struct{}
	carrySpan  uint64
	carryAt    int64 // offset of the snapshot marker
	live       map[string]liveEntry
	persisted  uint64
	maxSeq     uint64
	replays    uint64 // Txns dropped by the fence
	carryTaken int
}

func openExactly(ctx context.Context, s *Sink) (*exactly, error) {
	x := &exactly{s: s, topic: strings.ReplaceAll(s.cfg.StateTopic, "{channel}", s.cfg.Channel),
		live: map[string]liveEntry{}, carryAt: -1}
	var b [8]byte
	_, _ = rand.Read(b[:])
	x.session = hex.EncodeToString(b[:])
	if err := x.ensureTopic(ctx); err != nil {
		return nil, err
	}
	carry, span, err := x.load(ctx)
	if err != nil {
		return nil, err
	}
	x.carry, x.carrySpan = carry, span
	if len(carry) == 0 {
		x.carrySpan = 0
	}
	// The snapshot marker: the fence this session took over, so that its
	// later markers need not repeat it.
	snap := marker{Channel: s.cfg.Channel, Session: x.session, From: -1, CarryLeft: x.carrySpan}
	for k := range carry {
		snap.Carry = append(snap.Carry, k)
	}
	off, err := x.commitMarker(ctx, nil, snap)
	if err != nil {
		return nil, x.openErr("write the snapshot marker", err)
	}
	x.carryAt = off
	if len(carry) > 0 {
		s.log.Info("exactly-once: replay fence loaded; replayed changes already in Kafka will not be published again",
			"state_topic", x.topic, "fenced_txns", len(carry), "span", x.carrySpan)
	}
	return x, nil
}

func (x *exactly) openErr(what string, err error) error {
	return x.s.lease.openErr(what+" in state topic "+x.topic, err)
}

// ensureTopic creates the state topic (one partition, compacted) unless
// it exists.
func (x *exactly) ensureTopic(ctx context.Context) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = x.topic, 1, -1
	cp := kmsg.NewCreateTopicsRequestTopicConfig()
	cp.Name, cp.Value = "cleanup.policy", kmsg.StringPtr("compact")
	t.Configs = append(t.Configs, cp)
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 15000
	resp, err := req.RequestWith(ctx, x.s.client)
	if err != nil {
		return retry.Transient(fmt.Errorf("kafka exactly-once: create state topic %s: %w", x.topic, x.s.cfg.Link.Explain(err)))
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka exactly-once: create state topic %s: %w; create it (1 partition, cleanup.policy=compact) or grant CREATE, or set sink.kafka.state_topic", x.topic, err)
		}
	}
	return nil
}

// fenceKey identifies a Txn across sessions: its position, and for a
// chunk of a huge transaction (whose chunks share the position before
// it) the chunk's first change and size.
func fenceKey(txn *event.Txn) string {
	if !txn.Partial {
		return string(txn.Pos)
	}
	h := xxhash.New()
	if len(txn.Changes) > 0 {
		c := &txn.Changes[0]
		_, _ = h.WriteString(c.Namespace)
		_, _ = fmt.Fprint(h, c.Op, c.Before, c.After)
	}
	return string(txn.Pos) + "\x00" + strconv.Itoa(len(txn.Changes)) + "." + strconv.FormatUint(h.Sum64(), 36)
}

// nextMarker is the marker of the next transaction; x.fmu is held.
func (x *exactly) nextMarker(entries []entry) marker {
	x.txnNo++
	m := marker{Channel: x.s.cfg.Channel, Session: x.session, Txn: x.txnNo, Persisted: x.persisted,
		MaxSeq: x.maxSeq, From: -1, Entries: entries}
	for _, e := range entries {
		m.MaxSeq = max(m.MaxSeq, e.Seq)
	}
	if len(x.carry) > 0 {
		m.CarryLeft = x.carrySpan - min(x.carrySpan, x.persisted)
		m.From = x.carryAt
	}
	for _, le := range x.live {
		if m.From < 0 || le.offset < m.From {
			m.From = le.offset
		}
	}
	return m
}

// commitMarker runs one transaction of recs and the marker m and returns
// the marker's offset.
func (x *exactly) commitMarker(ctx context.Context, recs []*kgo.Record, m marker) (int64, error) {
	mrec, err := x.markerRecord(m)
	if err != nil {
		return 0, err
	}
	l := x.s.lease
	if err := l.lock(); err != nil {
		return 0, err
	}
	defer l.unlock()
	if begun, err := l.produce(ctx, append(recs, mrec)); err != nil {
		if begun {
			l.abort(ctx)
		}
		return 0, err
	}
	return x.commit(ctx, m, mrec)
}

// commit ends the open transaction whose marker is m (produced as mrec)
// and returns the marker's offset. When the outcome is unknown it aborts
// (as franz-go asks) and reads the state topic back to learn it.
func (x *exactly) commit(ctx context.Context, m marker, mrec *kgo.Record) (int64, error) {
	err := x.s.lease.commit(ctx)
	if err == nil {
		return mrec.Offset, nil
	}
	if isFenced(err) {
		return 0, err
	}
	latest, off, lerr := x.latest(ctx)
	if lerr == nil && latest != nil && latest.Session == m.Session && latest.Txn == m.Txn {
		x.s.log.Info("exactly-once: commit reported an error but the transaction is in Kafka", "txn", m.Txn, "error", err)
		return off, nil
	}
	return 0, err
}

// Persisted is told the seq of each checkpoint the channel saved: the
// Txns at or before it will not be read again, so the fence forgets them.
func (x *exactly) Persisted(seq uint64) {
	x.fmu.Lock()
	defer x.fmu.Unlock()
	if seq > x.persisted {
		x.persisted = seq
	}
	x.prune()
}

// prune drops what the saved checkpoint passed; x.fmu is held.
func (x *exactly) prune() {
	for k, le := range x.live {
		if le.seq <= x.persisted {
			delete(x.live, k)
		}
	}
	if len(x.carry) > 0 && x.persisted >= x.carrySpan {
		x.carry = nil
	}
}

// Persisted implements pipeline.CheckpointWatcher: an exactly-once sink
// forgets the fence entries the channel's saved checkpoint passed.
func (s *Sink) Persisted(seq uint64) {
	if s.eos != nil {
		s.eos.Persisted(seq)
	}
}

// Replays returns how many replayed Txns the exactly-once fence kept from
// being published again.
func (s *Sink) Replays() uint64 {
	if s.eos == nil {
		return 0
	}
	s.eos.fmu.Lock()
	defer s.eos.fmu.Unlock()
	return s.eos.replays
}

// load reads the fence left by the previous session: the keys it
// published past its last saved checkpoint, and the span of seqs within
// which they can be replayed.
func (x *exactly) load(ctx context.Context) (map[string]struct{}, uint64, error) {
	latest, at, err := x.latest(ctx)
	if err != nil || latest == nil {
		return nil, 0, err
	}
	from := latest.From
	if from < 0 || from > at {
		from = at
	}
	ms, err := x.read(ctx, from, at+1)
	if err != nil {
		return nil, 0, err
	}
	fence := map[string]struct{}{}
	for _, m := range ms {
		if m.Session != latest.Session {
			continue
		}
		if m.Txn == 0 && latest.CarryLeft > 0 {
			for _, k := range m.Carry {
				fence[k] = struct{}{}
			}
		}
		for _, e := range m.Entries {
			if e.Seq > latest.Persisted {
				fence[e.Key] = struct{}{}
			}
		}
	}
	span := latest.CarryLeft
	if latest.MaxSeq > latest.Persisted {
		span = max(span, latest.MaxSeq-latest.Persisted)
	}
	return fence, span, nil
}

// latest returns the last committed marker and its offset (nil when the
// state topic holds none).
func (x *exactly) latest(ctx context.Context) (*marker, int64, error) {
	end, err := x.stableEnd(ctx)
	if err != nil || end == 0 {
		return nil, 0, err
	}
	for back := int64(8); ; back *= 4 {
		from := max(0, end-back)
		ms, err := x.readAt(ctx, from, end)
		if err != nil {
			return nil, 0, err
		}
		if len(ms) > 0 {
			last := ms[len(ms)-1]
			return &last.m, last.offset, nil
		}
		if from == 0 {
			return nil, 0, nil
		}
	}
}

func (x *exactly) read(ctx context.Context, from, end int64) ([]marker, error) {
	ms, err := x.readAt(ctx, from, end)
	out := make([]marker, len(ms))
	for i := range ms {
		out[i] = ms[i].m
	}
	return out, err
}

// stableEnd is the state topic's last stable offset: every transaction
// before it is decided.
func (x *exactly) stableEnd(ctx context.Context) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = x.topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, x.s.client)
	if err != nil {
		return 0, retry.Transient(fmt.Errorf("kafka exactly-once: end of state topic %s: %w", x.topic, err))
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, retry.Transient(fmt.Errorf("kafka exactly-once: end of state topic %s: %w", x.topic, err))
			}
			return p.Offset, nil
		}
	}
	return 0, fmt.Errorf("kafka exactly-once: state topic %s has no partition 0", x.topic)
}

type markerAt struct {
	m      marker
	offset int64
}

// readAt reads the committed markers of the state topic in [from, end),
// end being at most the last stable offset. Control records are kept so
// that the read knows when it reached end.
func (x *exactly) readAt(ctx context.Context, from, end int64) ([]markerAt, error) {
	if from >= end {
		return nil, nil
	}
	linkOpts, err := x.s.cfg.Link.Opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(x.s.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{x.topic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords()}, linkOpts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []markerAt
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, retry.Transient(fmt.Errorf("kafka exactly-once: read state topic %s [%d, %d): %w", x.topic, from, end, ctx.Err()))
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, retry.Transient(fmt.Errorf("kafka exactly-once: read state topic %s: %w", x.topic, ferr))
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end-1 {
				done = true
			}
			if r.Offset >= end || r.Attrs.IsControl() {
				return
			}
			var m marker
			if err := json.Unmarshal(r.Value, &m); err != nil || m.Session == "" {
				return // the aborted probe, or not a marker
			}
			out = append(out, markerAt{m: m, offset: r.Offset})
		})
		if done {
			return out, nil
		}
	}
}
