// Package sink defines what every sink provides, applying batches of
// ready transactions replay-safely and fenced against a second process,
// and owns the target protocol every engine implements (protocol.go):
// each apply is one atomic unit on the target that writes the path
// marker, the data and its replay fence, and proves the lease inside the
// unit. Engines live in subpackages (sink/mysql, sink/redis, sink/mongo,
// sink/kafka); sink/sinktest is the conformance suite every sink runs.
package sink

import (
	"context"
	"errors"

	"github.com/hamal-replication/hamal/event"
)

// ErrLeaseHeld means another process holds the channel's lease on the
// target (or took it while this one had lost it). It is fatal: two
// processes must never apply one channel. Every sink wraps it, from Open
// and from a unit whose lease proof failed.
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
