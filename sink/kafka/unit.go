package kafka

import (
	"context"
	"encoding/json"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
)

// The sink's side of the target protocol (sink.Target, sink.Unit).
//
// With the lease (the default), a unit is one Kafka transaction of the
// channel's transactional id, held from Begin to Commit or Abort (one at
// a time, lease.go): Marker records the path for the headers; Write
// produces the records in the transaction, exactly-once after dropping
// what the replay fence shows published and with the fence marker;
// ProveLease is the producer epoch, which the broker checks when Commit
// ends the transaction (a fenced producer's commit fails with
// PRODUCER_FENCED, reported as sink.ErrLeaseHeld); Abort aborts the
// transaction.
//
// With Config.NoLease, a unit is one ProduceSync of its records (Commit
// and ProveLease do nothing: a second process publishes next to this
// one).

var (
	_ sink.Target = (*Sink)(nil)
	_ sink.Unit   = (*unit)(nil)
)

type unit struct {
	s       *Sink
	txns    []*event.Txn
	path    string
	locked  bool    // holds lease.txMu
	entries []entry // fence entries of the published Txns (exactly-once)
	m       marker
	mrec    *kgo.Record // the fence marker, once produced (exactly-once)
	open    bool        // a transaction is open
	empty   bool        // nothing to publish
}

// Begin implements sink.Target.
func (s *Sink) Begin(ctx context.Context, txns []*event.Txn) (sink.Unit, error) {
	u := &unit{s: s, txns: txns}
	if l := s.lease; l != nil {
		if err := l.lock(); err != nil {
			return nil, err
		}
		u.locked = true
	}
	return u, nil
}

// Class implements sink.Target: the unit's errors are already marked
// retry.Transient where a retry may help.
func (s *Sink) Class(error) sink.Class { return sink.ClassFatal }

func (u *unit) Marker(_ context.Context, m sink.Marker) error {
	if len(m.Path) > 0 {
		u.path = m.PathText()
	}
	return nil
}

func (u *unit) Write(ctx context.Context) error {
	s := u.s
	pub := u.txns
	if x := s.eos; x != nil {
		pub = make([]*event.Txn, 0, len(u.txns))
		x.fmu.Lock()
		for _, txn := range u.txns {
			if txn.Kind == event.KindHeartbeat {
				continue
			}
			k := fenceKey(txn)
			if txn.Seq > 0 {
				if _, ok := x.carry[k]; ok {
					x.replays++
					continue
				}
				u.entries = append(u.entries, entry{Key: k, Seq: txn.Seq})
			}
			pub = append(pub, txn)
		}
		x.fmu.Unlock()
	}
	recs, err := s.records(pub, u.path, time.Now())
	if err != nil {
		return err
	}
	l := s.lease
	if l == nil {
		if len(recs) == 0 {
			return nil
		}
		if err := s.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return s.classify(err)
		}
		return nil
	}
	x := s.eos
	if (x == nil && len(recs) == 0) || (x != nil && len(pub) == 0) {
		u.empty = true
		return nil
	}
	if x != nil {
		x.fmu.Lock()
		u.m = x.nextMarker(u.entries)
		x.fmu.Unlock()
		mrec, err := x.markerRecord(u.m)
		if err != nil {
			return err
		}
		recs = append(recs, mrec)
		u.mrec = mrec
	}
	begun, err := l.produce(ctx, recs)
	u.open = begun
	if err != nil {
		return l.wrap(err)
	}
	return nil
}

func (u *unit) ProveLease(context.Context) error { return nil }

func (u *unit) Commit(ctx context.Context) error {
	l := u.s.lease
	if l == nil || u.empty {
		u.release()
		return nil
	}
	x := u.s.eos
	if x == nil {
		err := l.commit(ctx)
		u.open = false
		if err != nil {
			return l.wrap(err)
		}
		u.release()
		return nil
	}
	off, err := x.commit(ctx, u.m, u.mrec)
	u.open = false
	if err != nil {
		return l.wrap(err)
	}
	x.fmu.Lock()
	for _, e := range u.entries {
		x.live[e.Key] = liveEntry{seq: e.Seq, offset: off}
		x.maxSeq = max(x.maxSeq, e.Seq)
	}
	x.prune()
	x.fmu.Unlock()
	u.release()
	return nil
}

func (u *unit) Abort() {
	if u.open {
		u.s.lease.abort(context.Background())
		u.open = false
	}
	u.release()
}

func (u *unit) release() {
	if u.locked {
		u.locked = false
		u.s.lease.unlock()
	}
}

// markerRecord is the state-topic record of m.
func (x *exactly) markerRecord(m marker) (*kgo.Record, error) {
	value, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: x.topic, Key: []byte(x.s.cfg.Channel), Value: value, Timestamp: time.Now()}, nil
}
