// Package kafka is Hamal's Kafka sink: it publishes every row change of
// the Txns it is given as one JSON envelope (package envelope) and returns
// from Apply only after the brokers acknowledged every message with
// acks=all, so the channel's checkpoint never passes a change that is not
// durably in Kafka.
//
// # Topics, keys, partitions
//
// The topic of a change comes from a template over {db}, {table} and
// {channel} (default "hamal.{db}.{table}"). The message key is the
// namespace and the row-key values ({"db":…,"table":…,"key":{…}}), so a
// row's changes share a key. The partition is chosen by a hash of the
// envelope's partition key: namespace + folded row key, or the namespace
// alone for tables with a unique key besides the primary key (and for
// keyless tables). The latter keeps every change that can conflict
// through a unique value in one partition, in order, which a consumer
// replaying partitions independently needs to converge (docs/kafka.md).
// Every message carries the header hamal-origin (the Txn's origin, or the
// configured source site when the Txn is local).
//
// # Order and delivery
//
// Txns sharing a conflict key reach Apply one after another (the DAG waits
// for the first Apply to return), and the producer (franz-go, idempotent,
// acks=all) writes the batches of one partition sequentially, so a key's
// messages land in source order. By default a replayed batch (after a
// crash, the Txns since the last saved checkpoint) is written again:
// delivery is at-least-once, and consumers deduplicate by
// (source.channel, source.position, source.index) or simply apply
// idempotently.
//
// # Lease
//
// Unless Config.NoLease, every Apply is one Kafka transaction of the
// channel's transactional id (TransactionalID), one at a time (lease.go):
// a second process opening the channel fences the first by producer
// epoch, and the first's next commit fails with sink.ErrLeaseHeld, so a
// read_committed consumer never sees what it published after the
// takeover. The transactional id is the sink's lease, in both delivery
// modes. NoLease publishes with the plain idempotent producer, unfenced,
// for Kafka-compatible brokers without transactions.
//
// # Exactly once
//
// With Config.ExactlyOnce each transaction of the lease also holds a
// marker in the channel's state topic, which records the replay fence
// (exactly.go): a read_committed consumer sees each change exactly once
// across kill -9 of the publisher. The sink implements
// pipeline.CheckpointWatcher to forget the fence entries the channel's
// saved checkpoints passed.
//
// # DDL
//
// A DDL Txn cannot be ordered against row messages spread over many
// partitions. By default (DDL "error") Apply fails with an error naming
// the statement; "skip" logs and drops it; "publish" writes it to the DDL
// topic (default "hamal.{channel}.ddl", one key per channel) for consumers
// to act on. Hamal's Kafka source does not apply DDL: apply schema changes
// to its targets by hand.
//
// # Errors
//
// Connection and broker errors are marked retry.Transient. A message larger than the broker accepts, an
// authorization failure, a missing topic without auto-creation and an
// unencodable change are fatal, naming the table or topic, the position and
// the fix.
//
// Usage sketch:
//
//	s, err := kafka.Open(ctx, kafka.Config{Brokers: []string{"k1:9092"}, Channel: "sz", Site: "sz"})
//	err = s.Apply(ctx, batch) // returns once every message is acknowledged
//	s.Close()
package kafka
