package mongo

import (
	"strconv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hamal-replication/hamal/sink"
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

// markerDoc is the marker document of a unit.
func markerDoc(channel string, slot int, m sink.Marker) bson.D {
	return bson.D{
		{Key: "_id", Value: markerID(channel, slot)},
		{Key: "origin", Value: m.Origin},
		{Key: "path", Value: m.PathText()},
		{Key: "n", Value: bson.NewObjectID()},
	}
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
