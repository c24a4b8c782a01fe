// Package redis is Hamal's Redis sink: it applies Txns to a Redis target
// exactly once, including non-idempotent commands (INCR, LPUSH, APPEND,
// ZINCRBY, HINCRBY …), by fencing with source offsets.
//
// Apply follows package sink's target protocol (sink.Apply; unit.go): each
// batch is one MULTI … EXEC per run of one path (in batch order, since a
// batch may chain Txns of one key), each under its own WATCH, on a dedicated
// connection: first SET hamal:origin:<channel>:<n> <origin> (the loop-guard
// marker a Redis source reads back; only when the sink has a site, so a
// channel without sites leaves no markers), then every command of every Txn
// (SELECTing its database), then HSET hamal:offset:<channel> with the new
// fences. The whole block commits atomically, so the data and the fence
// never disagree.
//
// The fence. Workers commit independent Txns out of source order, so one
// "last applied offset" would be unsound: a later Txn committed first would
// hide an earlier one that was never applied. Instead the fence is kept per
// slot: field "<db>/slot <n>" holds "<epoch> <offset>" of the last Txn
// applied to a key of that slot (16384 slots per database, so the hash
// stays small). The source gives every command its keys' slots as conflict
// keys, so Txns of one slot are applied in source order, and a Txn was
// applied iff a fence of one of its slots, in its epoch, is at or beyond
// its offset. Before each batch Apply reads the fences of slots it has not
// seen since it opened (HMGET, in the round trip that checks the lease)
// and skips Txns already applied; after a crash, the replay from the
// checkpoint therefore applies nothing twice. The fences it read or
// committed it keeps (the lease makes it their only writer), so a running
// channel reads each slot's fence once; it forgets a batch's fences when
// its EXEC's outcome is unknown, and all when the lease keys were found
// gone (a flushed target). The HSET writes only the slots the batch
// touched. Barrier Txns use the field "barrier".
// Full-sync Txns are not fenced: they rebuild a key (DEL + rebuild +
// PEXPIREAT) and converge when repeated. Fences of another epoch (another
// full sync) are ignored.
//
// Fencing lease: Open takes hamal:lease:<channel> (TTL, renewed) and
// hamal:lease-owner:<channel> (no TTL, changed only when the lease changes
// hands) and fails with ErrLeaseHeld while a connected process holds them.
// Each batch WATCHes the owner key and reads it with the fences, so EXEC
// aborts if the lease changed hands meanwhile (see lease.go).
//
// Loop guard: with Config.Site set, Txns whose Origin equals it are
// dropped, since they came from this target in the first place.
//
// Errors: connection failures and LOADING/BUSY/TRYAGAIN/READONLY replies are
// retry.Transient (the batch is retried; the fence makes the retry safe
// even when EXEC's reply was lost). A command the target refuses (e.g.
// WRONGTYPE) is fatal and names the command, its key and the positions.
//
// Positions and Hamal's key names come from package redisrepl; the sink
// does not import the Redis source.
package redis
