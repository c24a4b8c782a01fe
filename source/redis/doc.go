// Package redis is Hamal's Redis source: it poses as a replica of a Redis
// master (the PSYNC protocol, not keyspace notifications or SCAN) and
// emits the master's writes as event.Txns.
//
// What it owns:
//
//   - The handshake: AUTH when a password is set, REPLCONF listening-port,
//     REPLCONF capa eof capa psync2, then PSYNC <replid> <offset+1> from the
//     checkpoint, or PSYNC ? -1 without one. +CONTINUE resumes the stream
//     (with the master's new replid after a restart or failover);
//     +FULLRESYNC is followed by the RDB, on disk ($<len>) or diskless
//     ($EOF:<mark>) form, streamed through github.com/hdt3213/rdb one key
//     at a time. REPLCONF ACK <offset> goes out every second (a diskless
//     master starts the stream only after the first one).
//   - A checkpoint whose replid the master does not know (neither
//     master_replid nor master_replid2) is ErrUnknownReplID, fatal: it is
//     from another master, and silently syncing again could mix two
//     datasets.
//   - Positions: package redisrepl owns Position and its codec (compact
//     JSON {"replid":…,"offset":…,"epoch":…,"db":…}), which the sink reads
//     too; Position, EncodePosition and DecodePosition here are its names.
//     The reader encodes each Txn's Pos once with a per-stream
//     redisrepl.Encoder and hands Next the typed position beside it, so
//     nothing on the read path decodes a position.
//   - Hand-over: the reader goroutine parses the stream, extracts the
//     keys and their slot tags, and queues the Txns; it hands them to Next
//     in slices of up to 256, at once when nothing more is buffered from
//     the master (so batching adds no latency), and the channel's
//     goroutine only dequeues.
//   - Key positions from the master's own COMMAND table (Commands, read at
//     Open), so every command gets its keys; the keys become conflict keys
//     as their cluster slot (redisrepl.SlotTag), which the sink's fence
//     relies on.
//
// How Redis maps onto event:
//
//   - A full sync emits one Txn per key (KindDML, Pos with Snapshot set):
//     the commands that rebuild it idempotently (DEL, then RPUSH / SADD /
//     ZADD / HSET / XADD … in chunks of 512 elements, then PEXPIREAT), all
//     in the key's database. The end of the RDB is a heartbeat whose Pos is
//     the stream position; resuming at a snapshot position repeats the
//     full sync.
//   - The stream: each command outside MULTI is one Txn; MULTI … EXEC is
//     one Txn. Change.Op is OpCommand, Namespace the database number (the
//     stream's SELECTs are tracked), Args the command as the master sent
//     it, Keys the slot tags of its keys. FLUSHDB, FLUSHALL, SWAPDB, MOVE,
//     COPY … DB, key-less scripts, SORT by pattern and unknown commands have
//     no Keys: their Txn is KindBarrier. PING and REPLCONF only move the
//     position (heartbeats); SELECT is not emitted.
//   - Loop guard: a MULTI whose first write is SET hamal:origin:<worker>
//     <site> (what the Redis sink writes) gives its Txn that Origin; other
//     Txns get Config.Site. Commands touching only hamal:* keys, and
//     hamal:* keys in the RDB, are never emitted as data.
//
// Usage sketch:
//
//	src, err := redis.Open(ctx, redis.Config{Addr: "10.0.0.5:6379", Password: pw, Site: "sz"}, checkpointPos)
//	for {
//		txn, err := src.Next(ctx)
//		…
//	}
package redis
