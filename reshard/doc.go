// Package reshard runs online resharding migrations between MySQL/MariaDB
// shards: split one shard into N, merge N into one, or move tables, while
// the application keeps writing to the source.
//
// A Plan (plan.go, strict YAML) names the source shard(s), the target
// shards and, per table, a shard-key column and a rule (package shardrule): hash
// (CRC-32/IEEE of the key's canonical text mod N, the same as SQL's
// CRC32(col) % N), range (half-open intervals that must cover every key)
// or list (explicit values, optional default).
//
// A Migration (migration.go) moves through phases, each persisted in
// Pebble under migration/<name>/state before it is acted on, so kill -9 at
// any instant resumes:
//
//		new ──snapshot──▶ copy ──▶ catchup ──cutover──▶ cutover(fenced ▶ switched) ──complete──▶ complete
//		   └───────────────┴─────────┴──────────────────────┴──── cancel ──▶ cancelled
//
//	  - snapshot: take every source's snapshot position
//	    (engine/mysql SnapshotPosition: exact, lock-free on MariaDB), create the
//	    target tables from SHOW CREATE TABLE, split each table into key
//	    ranges.
//	  - copy (copy.go): the shared copier (package tablecopy) copies the
//	    ranges in parallel, in key order, value-exactly (binary protocol),
//	    routing each row by the rule, as LOAD DATA LOCAL … REPLACE per target
//	    and chunk, throttled by max_rows_per_second and source load; each
//	    chunk's last key is saved after the targets hold it. No lock is
//	    taken: the catch-up replays from the snapshot position, which
//	    precedes every read of the copy, with replay-safe sinks, so every
//	    row converges.
//	  - catchup (channels.go): one pipeline.Channel per source
//	    (source/mysql → Router → N sink/mysql sinks); the Router (router.go)
//	    splits batches by the rule, turns a row moving between shards into
//	    delete + insert, and sends DDL to every target. Verify (verify.go)
//	    runs once caught up.
//	  - cutover (cutover.go): fence the sources (read_only or a hook),
//	    record their final positions, wait until every channel's checkpoint
//	    holds them (or unfence and return to catchup on timeout), record the
//	    targets' positions and start reverse replication targets → sources
//	    with the loop guard (the same Router, routing by the table's
//	    source_rule after a merge), so cancel can roll back.
//	  - complete / cancel: stop channels and leave a record in the state.
//
// Reverse replication is a phase of its own in Status: its state
// (running, failing with each channel's error, not available), its lag,
// and Rollback, whether cancel can make the sources the primary again now
// (status.go; metrics hamal_migrate_channel_state/_lag_seconds,
// hamal_migrate_rollback_ready). A channel that cannot apply is a problem,
// never a lag.
//
// Check (check.go) is `hamal migrate check`: the preflight of every
// channel of every phase with the plan's users (engine/mysql's source and
// sink checks), the fence's and the rollback's grants, the accounts that
// could write through read_only (bypass.go; the cut-over refuses, fences
// or warns as cutover.read_only_bypass says) and AUTO_INCREMENT columns
// whose new rows would collide across the targets (auto_increment.stagger
// fixes them at the switch).
//
// The running process serves Status, the status page, Prometheus metrics
// and the cutover/cancel/complete/verify/resume requests over HTTP
// (Handler). Every saved state is repeated in a status file beside the
// Pebble files, which LoadState reads without the store's lock.
package reshard
