package mongo

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hamal-replication/hamal/event"
)

// copier is what the initial sync needs of a deployment; the driver
// provides it (driverCopier), tests a map.
type copier interface {
	// ClusterTime is the deployment's current cluster time, read before
	// the copy: the stream starts there afterwards.
	ClusterTime(ctx context.Context) (bson.Timestamp, error)
	// Collections lists the collections in scope, as "db.coll", without
	// Hamal's own, system collections and views.
	Collections(ctx context.Context) ([]string, error)
	// Scan calls fn for every document of ns in _id order.
	Scan(ctx context.Context, ns string, fn func(doc bson.Raw) error) error
}

// copyParallel is how many collections are copied at once.
const copyParallel = 4

// initialSync copies every collection in scope as insert changes, one Txn
// per document, all positioned at the snapshot (resuming from one repeats
// the copy), and returns the position the stream starts from: the cluster
// time read before the copy. Documents changed during the copy are
// replaced again by their change events, which the stream replays from
// that time, so the target converges.
func (s *Source) initialSync(cp copier) (Position, error) {
	ts, err := cp.ClusterTime(s.ctx)
	if err != nil {
		return Position{}, s.classify(fmt.Errorf("initial sync: read the cluster time: %w", err))
	}
	at := Position{ClusterTime: FormatClusterTime(ts)}
	snap := at
	snap.Snapshot = true
	snapPos := EncodePosition(snap)
	colls, err := cp.Collections(s.ctx)
	if err != nil {
		return Position{}, s.classify(fmt.Errorf("initial sync: list collections: %w", err))
	}
	sort.Strings(colls)
	s.log.Info("initial sync: copying collections", "collections", len(colls), "cluster_time", at.ClusterTime)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, copyParallel)
	var wg sync.WaitGroup
	for _, ns := range colls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n := 0
			err := cp.Scan(ctx, ns, func(doc bson.Raw) error {
				id, err := doc.LookupErr("_id")
				if err != nil {
					return fmt.Errorf("document without _id")
				}
				doc = append(bson.Raw(nil), doc...)
				t := &event.Txn{Kind: event.KindDML, Pos: snapPos, CommitTime: time.Now(), Origin: s.cfg.Site,
					Changes: []event.Change{{Op: event.OpInsert, Namespace: ns, After: []any{doc}, Keys: [][]byte{IDKey(id)}}}}
				if !s.emit(t) {
					return errClosed
				}
				n++
				return nil
			})
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("initial sync of %s: %w", ns, err)
				}
				mu.Unlock()
				cancel()
				return
			}
			s.log.Info("initial sync: collection copied", "ns", ns, "documents", n)
		}()
	}
	wg.Wait()
	if s.ctx.Err() != nil {
		return Position{}, errClosed
	}
	if firstErr != nil {
		return Position{}, s.classify(firstErr)
	}
	// Copied: from here a resume streams from the cluster time.
	if !s.emit(&event.Txn{Kind: event.KindHeartbeat, Pos: EncodePosition(at), CommitTime: time.Now()}) {
		return Position{}, errClosed
	}
	return at, nil
}
