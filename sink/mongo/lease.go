package mongo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
)

// LeaseColl is the collection (in HamalDB) holding the channels' leases.
const LeaseColl = "lease"

// ErrLeaseHeld is sink.ErrLeaseHeld: another process holds the channel's
// lease document on the target.
var ErrLeaseHeld = sink.ErrLeaseHeld

const defaultLeaseTTL = 10 * time.Second

// The lease (the target protocol of package sink) lives in hamal.lease:
//
//	{_id: "<channel>", owner: "<host> <pid> <nonce>", beat: 41}     the lease
//	{_id: "<channel>/<slot>", channel: "<channel>", owner: …, n: 7}  one per slot
//
// The holder increments beat every TTL/5. Without clocks to compare, a
// successor tells a dead holder by its beat: unchanged for a whole TTL.
// It then takes the lease document over (matching the beat it saw, so a
// holder that came back wins) and rewrites every slot document's owner.
//
// The proof inside a unit is an update of the unit's slot document that
// matches only while it names this process. In a transaction (a replica
// set) that write conflicts with the successor's takeover: either the
// takeover waits until the unit committed (its data is ordered before the
// successor's) or the unit aborts with a write conflict, and its retry
// finds the slot document naming the successor (ErrLeaseHeld). Slots, not
// the lease document, carry the proof so that concurrent units never
// write one document and conflict with each other. A slot document is
// created outside a transaction on the slot's first use, and the lease
// document is read after it, so a takeover either sees it or has already
// happened (the slot is then refused).
//
// Without transactions (a standalone server, FerretDB) there is no unit
// to prove the lease in: the slot update runs right before the batch's
// writes, so a process that lost the lease stops at its next batch, and a
// batch already past the check may still land. Open logs that.
type lease struct {
	coll    *mongo.Collection
	channel string
	owner   string
	ttl     time.Duration
	log     logger

	state  atomic.Int32
	slots  sync.Map // slot number → struct{}: its document exists
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

type logger interface {
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

const (
	leaseHeld int32 = iota + 1
	leaseLost
)

func slotLeaseID(channel string, slot int) string { return channel + "/" + strconv.Itoa(slot) }

// acquireLease takes the channel's lease, waiting at most one TTL (plus a
// renewal) for a holder that is gone, then failing with ErrLeaseHeld.
func acquireLease(ctx context.Context, client *mongo.Client, channel string, ttl time.Duration, log logger) (*lease, error) {
	l := &lease{coll: client.Database(HamalDB).Collection(LeaseColl), channel: channel, ttl: ttl, log: log,
		owner: sink.HolderID(), stop: make(chan struct{}), done: make(chan struct{})}
	var seen bson.M
	seenAt := time.Now()
	for {
		_, err := l.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: channel}, {Key: "owner", Value: l.owner}, {Key: "beat", Value: int64(0)}})
		if err == nil {
			break
		}
		if !mongo.IsDuplicateKeyError(err) {
			return nil, fmt.Errorf("lease: insert %s.%s {_id: %q}: %w", HamalDB, LeaseColl, channel, err)
		}
		var cur bson.M
		if err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: channel}}).Decode(&cur); err != nil {
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue // released meanwhile
			}
			return nil, fmt.Errorf("lease: read %s.%s {_id: %q}: %w", HamalDB, LeaseColl, channel, err)
		}
		if seen == nil || cur["owner"] != seen["owner"] || cur["beat"] != seen["beat"] {
			if seen != nil && cur["owner"] == seen["owner"] {
				return nil, fmt.Errorf("%w: channel %q is applied by %v (document {_id: %q} in %s.%s is renewed); stop that process first",
					ErrLeaseHeld, channel, cur["owner"], channel, HamalDB, LeaseColl)
			}
			seen, seenAt = cur, time.Now()
		} else if time.Since(seenAt) > ttl {
			// Unrenewed for a whole TTL: its holder is gone. Take it over
			// unless it moved meanwhile.
			res, err := l.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: channel}, {Key: "owner", Value: cur["owner"]}, {Key: "beat", Value: cur["beat"]}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: l.owner}, {Key: "beat", Value: int64(0)}}}})
			if err != nil {
				return nil, fmt.Errorf("lease: take over %s.%s {_id: %q}: %w", HamalDB, LeaseColl, channel, err)
			}
			if res.ModifiedCount == 1 {
				log.Warn("took over the lease of a holder that stopped renewing it", "channel", channel, "previous_owner", cur["owner"])
				break
			}
			seen = nil
			continue
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(ttl / 10):
		}
	}
	// Every slot document of the channel now names this process, so units
	// of a previous holder fail their proof.
	if _, err := l.coll.UpdateMany(ctx, bson.D{{Key: "channel", Value: channel}}, bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: l.owner}}}}); err != nil {
		return nil, fmt.Errorf("lease: claim the slot documents of channel %q in %s.%s: %w", channel, HamalDB, LeaseColl, err)
	}
	l.state.Store(leaseHeld)
	go l.renew()
	return l, nil
}

func (l *lease) renew() {
	defer close(l.done)
	sink.KeepLease(l.stop, l.ttl, func(ctx context.Context) (bool, error) {
		res, err := l.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: l.channel}, {Key: "owner", Value: l.owner}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "beat", Value: int64(1)}}}})
		return err == nil && res.MatchedCount > 0, err
	}, func() {
		l.state.Store(leaseLost)
		l.log.Error("lease lost to another process", "channel", l.channel)
	})
}

// check is the in-memory hint: ErrLeaseHeld once the lease was lost.
func (l *lease) check() error {
	if l.state.Load() == leaseLost {
		return fmt.Errorf("%w: document {_id: %q} in %s.%s names another holder; this process stops applying", ErrLeaseHeld, l.channel, HamalDB, LeaseColl)
	}
	return nil
}

// ensureSlot claims the slot's document for this process on the slot's
// first use, outside any transaction, and then reads the lease document:
// a takeover either ran before (refused here) or rewrites the slot
// document after the claim.
func (l *lease) ensureSlot(ctx context.Context, slot int) error {
	if _, ok := l.slots.Load(slot); ok {
		return nil
	}
	id := slotLeaseID(l.channel, slot)
	_, err := l.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "channel", Value: l.channel}, {Key: "owner", Value: l.owner}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return leaseTransient(fmt.Errorf("lease: claim slot document {_id: %q} in %s.%s: %w", id, HamalDB, LeaseColl, err))
	}
	holder, err := l.holder(ctx)
	if err != nil {
		return err
	}
	if holder != l.owner {
		return l.lost(holder)
	}
	l.slots.Store(slot, struct{}{})
	return nil
}

// holder reads the owner of the lease document ("" when there is none).
func (l *lease) holder(ctx context.Context) (string, error) {
	var cur struct {
		Owner string `bson:"owner"`
	}
	if err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: l.channel}}).Decode(&cur); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return "", leaseTransient(fmt.Errorf("lease: read %s.%s {_id: %q}: %w", HamalDB, LeaseColl, l.channel, err))
	}
	return cur.Owner, nil
}

// prove updates the slot's document while it names this process, in the
// unit's transaction when tctx carries one (ctx: the same without it). When it does not, the lease
// document tells why: another holder (ErrLeaseHeld), or a process that
// lost the lease claimed the slot on its way out, in which case the slot
// is claimed back on the retry (transient).
func (l *lease) prove(tctx, ctx context.Context, slot int) error {
	id := slotLeaseID(l.channel, slot)
	res, err := l.coll.UpdateOne(tctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: l.owner}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(1)}}}})
	if err != nil {
		return &nsError{ns: HamalDB + "." + LeaseColl, err: err}
	}
	if res.MatchedCount == 1 {
		return nil
	}
	l.slots.Delete(slot)
	// Outside the unit's transaction: the lease document as it is now.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	holder, err := l.holder(rctx)
	if err != nil {
		return err
	}
	if holder != l.owner {
		return l.lost(holder)
	}
	return retry.Transient(fmt.Errorf("lease: slot document {_id: %q} in %s.%s named another process; claimed back, retrying", id, HamalDB, LeaseColl))
}

func (l *lease) lost(holder string) error {
	l.state.Store(leaseLost)
	if holder == "" {
		holder = "another process"
	}
	return fmt.Errorf("%w: the lease of channel %q in %s.%s is held by %s; this unit was not applied and this process stops applying",
		ErrLeaseHeld, l.channel, HamalDB, LeaseColl, holder)
}

// release stops renewing and deletes the lease document if still held.
func (l *lease) release() {
	l.closed.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = l.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: l.channel}, {Key: "owner", Value: l.owner}})
	})
}

// leaseTransient marks a lease read that failed on the network.
func leaseTransient(err error) error {
	if transient(err) {
		return retry.Transient(err)
	}
	return err
}
