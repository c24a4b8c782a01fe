// Package redisrepl is what a Redis source and a Redis sink agree on,
// without either importing the other: the replication position and its
// codec, the names of Hamal's own keys on a Redis server, and the cluster
// slot a key hashes to (the conflict key the DAG orders by and the unit of
// the sink's offset fence).
//
// Why a package of its own rather than typed positions in package event:
// event is engine-neutral (the engine never looks inside a Position), and
// what a Redis position means (an epoch, an offset within it, the selected
// database, a full sync in progress) concerns only the two Redis ends. A
// sink fed by another producer (a relay, a test) needs only this package.
//
// What it owns:
//
//   - Position, with EncodePosition and DecodePosition: compact JSON
//     {"replid":…,"offset":…,"epoch":…,"db":…,"snapshot":true}, as
//     encoding/json writes it, so checkpoints stay readable in status
//     output and older checkpoints decode. Both directions are written by
//     hand for the hot path (one allocation to encode, none beyond the two
//     strings to decode) and fall back to encoding/json for anything the
//     fast path does not recognise; Encoder encodes the positions of one
//     stream with a precomputed prefix.
//   - MarkerPrefix and OriginPrefix: keys Hamal writes on a target and a
//     source never replicates.
//   - Slot and SlotTag: CRC16 cluster slots, the tags precomputed.
//
// Usage sketch:
//
//	enc := redisrepl.NewEncoder(replid, epoch)
//	txn.Pos = enc.Encode(offset, db)
//	p, err := redisrepl.DecodePosition(txn.Pos) // in the sink
package redisrepl
