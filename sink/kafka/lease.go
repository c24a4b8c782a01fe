package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
)

// The lease.
//
// Unless Config.NoLease, the sink's producer is transactional with the
// channel's transactional id (TransactionalID) and every unit is one Kafka
// transaction of it, one at a time: at-least-once, the batch's messages;
// exactly-once, the messages and the fence marker (exactly.go). Opening
// the sink initialises the transactional id (InitProducerID), which bumps
// its producer epoch and aborts a transaction the previous holder left
// open; the previous holder's next produce or commit fails with
// PRODUCER_FENCED (or INVALID_PRODUCER_EPOCH), reported as
// sink.ErrLeaseHeld and remembered, so every later unit fails with it. The
// broker checks the epoch when the transaction commits, inside the unit:
// a process that lost the channel cannot commit next to its successor,
// and a read_committed consumer never sees what it produced after the
// takeover.

// lease is the transactional producer's state: one transaction at a
// time, and the fence once another process took the transactional id.
type lease struct {
	s      *Sink
	txMu   sync.Mutex // held from a unit's Begin to its Commit or Abort
	fenced error      // set once the transactional id was taken over; guarded by txMu
}

// openLease takes the channel's transactional id over: initialising the
// producer id bumps the epoch, which fences the previous holder and
// aborts a transaction it left open.
func openLease(ctx context.Context, s *Sink) (*lease, error) {
	l := &lease{s: s}
	if _, _, err := s.client.ProducerID(ctx); err != nil {
		return nil, l.openErr("take over the transactional id", err)
	}
	return l, nil
}

// openErr is an error of taking over or using the transactional id at
// open, with the grants it needs when the brokers refused it.
func (l *lease) openErr(what string, err error) error {
	if isFenced(err) {
		return fmt.Errorf("kafka lease: %s: %w: %w", what, sink.ErrLeaseHeld, err)
	}
	err = fmt.Errorf("kafka lease: %s (transactional id %s): %w", what, TransactionalID(l.s.cfg.Channel), l.s.cfg.Link.Explain(err))
	if errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) {
		return fmt.Errorf("%w; grant the sink's user WRITE and DESCRIBE on the transactional id and IDEMPOTENT_WRITE on the cluster, or set sink.kafka.lease: false (no fence against a second process)", err)
	}
	if noTransactions(err) {
		return fmt.Errorf("%w; the brokers do not support transactions: set sink.kafka.lease: false (the plain idempotent producer, no fence against a second process)", err)
	}
	return retry.Transient(err)
}

// noTransactions reports a broker that cannot run InitProducerID with a
// transactional id (an old or Kafka-compatible broker without
// transactions).
func noTransactions(err error) bool {
	return errors.Is(err, kerr.UnsupportedVersion) || errors.Is(err, kerr.InvalidRequest) ||
		strings.Contains(err.Error(), "broker is too old")
}

// errAbortedBehind marks a commit the broker refused with
// INVALID_TXN_STATE although this process had produced into the
// transaction: the coordinator aborted it behind the process. With
// transactions v2 (KIP-890) that is what a holder sees when a successor's
// InitProducerID aborted its open transaction (the epoch is one behind,
// which the broker takes for a retry of an abort); the transaction timing
// out does the same, and the producer is fenced after it either way.
var errAbortedBehind = errors.New("the transaction was aborted by the brokers (another process took the transactional id, or it timed out)")

func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, errAbortedBehind)
}

// lock starts a unit: it waits for the transaction before it and fails
// with the fence once the lease is lost.
func (l *lease) lock() error {
	l.txMu.Lock()
	if l.fenced != nil {
		l.txMu.Unlock()
		return l.fenced
	}
	return nil
}

func (l *lease) unlock() { l.txMu.Unlock() }

// produce runs recs in a new transaction, left open for commit or abort
// (begun says whether one was opened); the error is the client's (the
// caller classifies it with wrap).
func (l *lease) produce(ctx context.Context, recs []*kgo.Record) (begun bool, err error) {
	c := l.s.client
	if err := c.BeginTransaction(); err != nil {
		return false, err
	}
	return true, c.ProduceSync(ctx, recs...).FirstErr()
}

// commit ends the open transaction. An error is returned as the broker
// gave it (the caller classifies it with wrap); when the outcome is not
// known the transaction is aborted, as franz-go asks.
func (l *lease) commit(ctx context.Context) error {
	c := l.s.client
	err := c.EndTransaction(ctx, kgo.TryCommit)
	if errors.Is(err, kerr.InvalidTxnState) {
		err = fmt.Errorf("%w: %w", errAbortedBehind, err)
	}
	if err == nil || isFenced(err) {
		return err
	}
	_ = c.EndTransaction(ctx, kgo.TryAbort)
	return err
}

// abort aborts the open transaction and what it buffered.
func (l *lease) abort(ctx context.Context) {
	c := l.s.client
	if err := c.AbortBufferedRecords(ctx); err != nil {
		l.s.log.Warn("kafka lease: abort buffered records", "error", err)
	}
	if err := c.EndTransaction(ctx, kgo.TryAbort); err != nil {
		l.s.log.Warn("kafka lease: abort transaction", "error", err)
	}
}

// wrap classifies an error of a transaction: a fenced producer is the
// lease lost for good (remembered: every later unit fails with it); l.txMu
// is held.
func (l *lease) wrap(err error) error {
	if isFenced(err) {
		l.fenced = fmt.Errorf("%w: another process took the channel's transactional id %s (producer epoch): %w",
			sink.ErrLeaseHeld, TransactionalID(l.s.cfg.Channel), err)
		return l.fenced
	}
	return l.s.classify(err)
}
