package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
)

// The sink's side of the target protocol (sink.Target, sink.Unit). On a
// replica set a unit is one session transaction:
//
//	replaceOne hamal.origin_marker {_id: "<channel>/<slot>"}   Marker (with Config.Site)
//	bulkWrite per namespace (replace-with-upsert, delete)      Write
//	updateOne hamal.lease {_id: "<channel>/<slot>", owner: me} ProveLease (lease.go)
//	commitTransaction
//
// The writes are idempotent by shape (full documents by _id), so the
// replay fence is the data itself; barriers record their position in
// hamal.applied_ddl (ddl.go). On a standalone server or FerretDB, which
// have no transactions, the lease is proved before the bulk writes and no
// marker is written (see lease.go and the package doc).

var (
	_ sink.Target = (*Sink)(nil)
	_ sink.Unit   = (*unit)(nil)
)

// nsError names the namespace a failed write was about.
type nsError struct {
	ns  string
	err error
}

func (e *nsError) Error() string {
	if mongo.IsDuplicateKeyError(e.err) {
		return fmt.Sprintf("%s: %v; a secondary unique index on the target conflicts with replace-by-_id: drop it or make it non-unique", e.ns, e.err)
	}
	return e.ns + ": " + e.err.Error()
}
func (e *nsError) Unwrap() error { return e.err }

// Apply applies a batch through the target protocol (sink.Apply): per run
// of one path, the net effect per document in one unordered bulk write per
// namespace, with the marker and the lease proof in one transaction on a
// replica set; a barrier (drop, rename, dropDatabase) arrives alone and
// runs its command (ddl.go). Errors are transient (retry.IsTransient:
// network, RetryableWriteError, TransientTransactionError) or fatal
// (ErrLeaseHeld among them), naming the namespace and the position of the
// unit's first Txn.
func (s *Sink) Apply(ctx context.Context, batch []*event.Txn) error {
	return sink.Apply(ctx, s, batch)
}

// Class classifies an error of a unit (sink.Target).
func (s *Sink) Class(err error) sink.Class {
	if transient(err) {
		return sink.ClassTransient
	}
	return sink.ClassFatal
}

// Begin plans the unit and, on a replica set, starts its transaction.
func (s *Sink) Begin(ctx context.Context, txns []*event.Txn) (sink.Unit, error) {
	if s.closed.Load() {
		return nil, errors.New("mongo sink: Apply after Close")
	}
	if s.lease == nil {
		return nil, errors.New("mongo sink: opened with SkipLease (for checks); such a sink must not apply")
	}
	if err := s.lease.check(); err != nil {
		return nil, err
	}
	u := &unit{s: s}
	if len(txns) == 1 && txns[0].Kind == event.KindDDL {
		u.barrier = txns[0]
	} else {
		nss, err := plan(txns)
		if err != nil {
			return nil, err
		}
		if len(nss) == 0 {
			return emptyUnit{}, nil
		}
		u.nss = nss
	}
	u.slot = s.slots.get()
	if err := s.lease.ensureSlot(ctx, u.slot); err != nil {
		u.release()
		return nil, err
	}
	if s.transactions && u.barrier == nil {
		sess, err := s.client.StartSession()
		if err != nil {
			u.release()
			return nil, err
		}
		u.sess = sess
		if err := sess.StartTransaction(); err != nil {
			u.release()
			return nil, err
		}
	} else if err := s.lease.prove(ctx, ctx, u.slot); err != nil {
		// No transaction to prove it in: before the writes.
		u.release()
		return nil, err
	}
	return u, nil
}

// unit is one batch run: a session transaction on a replica set.
type unit struct {
	s        *Sink
	sess     *mongo.Session // nil without transactions
	slot     int
	nss      []*nsWrites
	barrier  *event.Txn
	released bool
}

// in returns ctx carrying the unit's session (ctx itself without one).
func (u *unit) in(ctx context.Context) context.Context {
	if u.sess == nil {
		return ctx
	}
	return mongo.NewSessionContext(ctx, u.sess)
}

// release ends the session and frees the slot, once.
func (u *unit) release() {
	if u.released {
		return
	}
	u.released = true
	if u.sess != nil {
		u.sess.EndSession(context.Background())
	}
	u.s.slots.put(u.slot)
}

// Marker replaces the slot's marker document, the transaction's first
// write (with Config.Site, on a replica set).
func (u *unit) Marker(ctx context.Context, m sink.Marker) error {
	if u.sess == nil || u.s.cfg.Site == "" {
		return nil
	}
	doc := markerDoc(u.s.channel(), u.slot, m)
	_, err := u.s.client.Database(HamalDB).Collection(MarkerColl).ReplaceOne(u.in(ctx),
		bson.D{{Key: "_id", Value: doc[0].Value}}, doc, options.Replace().SetUpsert(true))
	if err != nil {
		return &nsError{ns: HamalDB + "." + MarkerColl, err: err}
	}
	return nil
}

// Write runs the bulk writes (or, for a barrier, nothing: it runs at
// Commit, as a command cannot be part of a transaction).
func (u *unit) Write(ctx context.Context) error {
	for _, n := range u.nss {
		if _, err := u.s.client.Database(n.db).Collection(n.coll).BulkWrite(u.in(ctx), n.models(), options.BulkWrite().SetOrdered(false)); err != nil {
			return &nsError{ns: n.db + "." + n.coll, err: err}
		}
	}
	return nil
}

// ProveLease updates the slot's lease document in the transaction (done
// in Begin without one).
func (u *unit) ProveLease(ctx context.Context) error {
	if u.sess == nil {
		return nil
	}
	return u.s.lease.prove(u.in(ctx), ctx, u.slot)
}

// Commit commits the transaction, retrying a commit whose result is
// unknown (the driver's advice); a barrier runs its command here.
func (u *unit) Commit(ctx context.Context) error {
	if u.barrier != nil {
		err := u.s.applyBarrier(ctx, u.barrier)
		u.release()
		return err
	}
	if u.sess == nil {
		u.release()
		return nil
	}
	var err error
	for range 3 {
		if err = u.sess.CommitTransaction(ctx); err == nil {
			break
		}
		var labeled interface{ HasErrorLabel(string) bool }
		if !errors.As(err, &labeled) || !labeled.HasErrorLabel("UnknownTransactionCommitResult") {
			break
		}
	}
	if err != nil {
		return &nsError{ns: "commit", err: err}
	}
	u.release()
	return nil
}

// Abort aborts the transaction, if any.
func (u *unit) Abort() {
	if u.released {
		return
	}
	if u.sess != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = u.sess.AbortTransaction(ctx)
		cancel()
	}
	u.release()
}

// emptyUnit is a run of heartbeats: nothing to write.
type emptyUnit struct{}

func (emptyUnit) Marker(context.Context, sink.Marker) error { return nil }
func (emptyUnit) Write(context.Context) error               { return nil }
func (emptyUnit) ProveLease(context.Context) error          { return nil }
func (emptyUnit) Commit(context.Context) error              { return nil }
func (emptyUnit) Abort()                                    {}
