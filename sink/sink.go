// Package sink defines what every sink provides: applying batches of
// ready transactions, replay-safely. Engines live in
// subpackages (sink/mysql; Redis, MongoDB and Kafka follow).
package sink

import (
	"context"
	"errors"

	"github.com/hamal-replication/hamal/event"
)

// ErrLeaseHeld means another process holds the channel's fencing lease on
// the target (or took it while this one had lost it). It is fatal: two
// processes must never apply one channel. Every sink with a lease wraps it.
var ErrLeaseHeld = errors.New("fencing lease held by another hamal process")

// Sink applies batches of Txns to one target.
//
// Apply is called concurrently by up to the configured number of workers.
// A batch is in seq order. Its Txns are independent of every other
// batch's in flight, but within the batch a Txn may depend on an earlier
// one (a chain of changes to one key, see dag.Options.Chain): the sink
// must apply the batch in its order, which coalescing into one target
// transaction by net effect per key does. Changes inside one Txn keep
// their order. A barrier Txn (DDL) always
// arrives alone in its batch. Apply returns only after the batch is durable
// on the target; on error nothing of the batch may be assumed applied. An
// error marked retry.Transient may be retried with the same batch; any other
// error is fatal and should name the table, the Txn's position and the cause.
//
// Replaying any suffix of already-applied Txns in DAG order must converge to
// the same target state (DESIGN.md guarantee 2).
//
// Close releases connections and the fencing lease; call it after the last
// Apply has returned.
type Sink interface {
	Apply(ctx context.Context, batch []*event.Txn) error
	Close() error
}
