// Package source defines what every source reader provides: a pull-based
// stream of committed transactions. Engines live in subpackages
// (source/mysql; Redis and MongoDB follow).
package source

import (
	"context"

	"github.com/hamal-replication/hamal/event"
)

// Source reads one upstream as a replica.
//
// Next blocks until the next committed Txn is available, ctx is done, or
// the stream fails. It returns Txns in source commit order with Pos set to
// the position after each Txn; it leaves Seq to the engine. A returned error
// marked retry.Transient (connection lost) means the engine may Close the
// source and open a new one at its checkpoint; any other error is fatal.
// Next is called from one goroutine only.
//
// Close releases the connection; it may be called concurrently with a
// blocked Next, which then returns an error, and more than once.
type Source interface {
	Next(ctx context.Context) (*event.Txn, error)
	Close() error
}
