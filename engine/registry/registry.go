// Package registry is the one list of the engines this build supports.
// Nothing registers itself: New names every driver, and `hamal run`,
// `hamal check`, `hamal failover-report`, the benchmarks and the config
// tests get their engines from it. Adding a fifth engine is one new
// package (engine/<name>, exporting Driver) and one line below.
//
// Each driver (engine.Driver) contains:
//
//   - the engine's name, the value of source.kind / sink.kind;
//   - per side it can play, its config block: a struct whose yaml tags are
//     the engine's keys in the source or sink mapping, decoded strictly by
//     package config (a key the engine does not have is an unknown key,
//     with a "did you mean"), and its Validate (defaults, *_file secrets,
//     every problem naming its key and the fix);
//   - Open: the source (resuming at a checkpoint) or the sink (with its
//     fencing lease), built from the block, TLS included where the engine
//     has it (the block builds the crypto/tls configuration);
//   - Check: the side's part of `hamal check` (read-only: connectivity,
//     server settings, privileges, the tables a MySQL source sends present
//     on a MySQL target);
//   - Endpoint and StartsAt: what the engine shows of itself in logs,
//     `hamal check` and reports (addresses without secrets; where a channel
//     without a checkpoint starts);
//   - optionally a Sidecar run beside the source (the MySQL heartbeat
//     writer) and a Redacted copy for printing.
//
// The engines today:
//
//	engine   source                                   sink
//	mysql    binlog replica, heartbeat sidecar, TLS   replay-safe applier, lease, conflicts, TLS
//	redis    PSYNC replica, key/database filters      exactly-once applier, lease
//	mongo    change stream                            upserts, origin marker in transactions
//	kafka    envelope reader                          envelope publisher
package registry

import (
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/engine/kafka"
	"github.com/hamal-replication/hamal/engine/mongo"
	"github.com/hamal-replication/hamal/engine/mysql"
	"github.com/hamal-replication/hamal/engine/redis"
)

// New returns the registry of every engine this build supports.
func New() *engine.Registry {
	return engine.NewRegistry(
		mysql.Driver,
		redis.Driver,
		mongo.Driver,
		kafka.Driver,
	)
}
