package mongo

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
)

// HamalDB is the target database holding Hamal's own collections; the
// MongoDB source never replicates its events as data.
const HamalDB = "hamal"

// MarkerColl is the loop-guard marker collection (DESIGN.md, "Loop guard").
const MarkerColl = "origin_marker"

// The origin marker: with Config.Site set and a replica-set target, every
// batch is one transaction whose first write replaces the marker document
// of its slot,
//
//	{_id: "<channel>/<slot>", origin: "sz", path: "sz,sh", n: ObjectId()}
//
// one document per concurrent Apply (a slot), so concurrent transactions
// never write the same document and conflict. The MongoDB source of the
// next hop sees the marker's event among the transaction's events (same
// lsid and txnNumber) and gives the whole transaction that origin and
// path. It is a replace, not an update: a replace event carries the new
// document itself, while an update's fullDocument is looked up when the
// event is read and may be a later transaction's marker. n changes on
// every write, so the replace is never a no-op that writes no event. It
// is the first write, so a source that streams a huge transaction in
// chunks meets it before any data.

// channel names this sink's marker and fence documents.
func (s *Sink) channel() string {
	if s.cfg.Channel == "" {
		return "hamal"
	}
	return s.cfg.Channel
}

// markerID is the _id of a slot's marker document.
func markerID(channel string, slot int) string {
	return channel + "/" + strconv.Itoa(slot)
}

// markerDoc is the marker document for a batch whose Txns share first's
// path.
func markerDoc(channel string, slot int, first *event.Txn) bson.D {
	origin := first.Origin
	if origin == "" && len(first.Path) > 0 {
		origin = first.Path[0]
	}
	return bson.D{
		{Key: "_id", Value: markerID(channel, slot)},
		{Key: "origin", Value: origin},
		{Key: "path", Value: loopguard.FormatPath(first.Path)},
		{Key: "n", Value: bson.NewObjectID()},
	}
}

// markerTxn returns the Txn whose path the batch's marker names: the
// first that carries changes (heartbeats write nothing). It refuses a
// batch whose data Txns do not share one path, since one marker describes
// the whole target transaction.
func markerTxn(batch []*event.Txn) (*event.Txn, error) {
	var first *event.Txn
	for _, txn := range batch {
		switch {
		case txn.Kind == event.KindHeartbeat:
		case first == nil:
			first = txn
		case !loopguard.SamePath(first, txn):
			return nil, fmt.Errorf("batch mixes Txns of paths %v and %v; the channel must split batches by path", first.Path, txn.Path)
		}
	}
	if first == nil {
		first = batch[0]
	}
	return first, nil
}

// slotPool hands out small integers, one per concurrent Apply, reusing
// freed ones, so the marker collection holds one document per worker.
type slotPool struct {
	mu   sync.Mutex
	free []int
	next int
}

func (p *slotPool) get() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		slot := p.free[n-1]
		p.free = p.free[:n-1]
		return slot
	}
	p.next++
	return p.next
}

func (p *slotPool) put(slot int) {
	p.mu.Lock()
	p.free = append(p.free, slot)
	p.mu.Unlock()
}

// applyInTransaction applies a planned batch and its marker in one
// transaction. The driver retries the whole callback on
// TransientTransactionError (a write conflict, a primary step-down) and
// the commit on UnknownTransactionCommitResult; what still fails is
// classified as for a bulk write.
func (s *Sink) applyInTransaction(ctx context.Context, batch []*event.Txn, nss []*nsWrites) error {
	first, err := markerTxn(batch)
	if err != nil {
		return fmt.Errorf("apply batch at %s: %w", batch[0].Pos, err)
	}
	slot := s.slots.get()
	defer s.slots.put(slot)
	sess, err := s.client.StartSession()
	if err != nil {
		return classify(ctx, batch[0], HamalDB+"."+MarkerColl, err)
	}
	defer sess.EndSession(context.Background())
	failedNS := ""
	_, err = sess.WithTransaction(ctx, func(tctx context.Context) (any, error) {
		failedNS = HamalDB + "." + MarkerColl
		marker := markerDoc(s.channel(), slot, first)
		_, err := s.client.Database(HamalDB).Collection(MarkerColl).ReplaceOne(tctx,
			bson.D{{Key: "_id", Value: marker[0].Value}}, marker, options.Replace().SetUpsert(true))
		if err != nil {
			return nil, err
		}
		for _, n := range nss {
			failedNS = n.db + "." + n.coll
			if _, err := s.client.Database(n.db).Collection(n.coll).BulkWrite(tctx, n.models(), options.BulkWrite().SetOrdered(false)); err != nil {
				return nil, err
			}
		}
		failedNS = ""
		return nil, nil
	})
	if err != nil {
		ns := failedNS
		if ns == "" {
			ns = "commit"
		}
		return classify(ctx, batch[0], ns, err)
	}
	return nil
}
