// Package kafka is Hamal's Kafka source: it reads the envelopes a Kafka
// sink published (package envelope) from a set of topics and turns each
// message back into a one-change Txn with its table description and
// origin, so a channel can apply it to a MySQL target. MySQL → Kafka →
// MySQL across sites keeps the guarantees of a direct channel: no loss,
// replay-safe apply, per-key order, origin kept for the loop guard.
//
// # Offsets live in the checkpoint
//
// The resume position of each Txn is the vector of next offsets of every
// partition the source reads, as of that message:
//
//	kafka hamal.app.orders/0=1200 hamal.app.orders/1=1187 hamal.app.users/0=96
//
// The channel persists the position of the highest Txn whose predecessors
// were all applied, so the offsets in the checkpoint are committed exactly
// when, and only after, the sink applied everything before them. No
// consumer-group offsets are used: a restart resumes at the checkpoint and
// replays at most what was read but not yet checkpointed, which the sinks
// apply idempotently.
//
// # Order
//
// One franz-go consumer fetches every partition, each in offset order, at
// read_committed (transaction markers and aborted batches are skipped),
// and one goroutine feeds its records to one merge channel, so each
// partition's messages reach Next in order. Messages of a
// row share a partition (the Kafka sink keys and partitions by row, and
// puts a table with secondary unique keys in one partition), so the DAG
// sees each key's changes — and each unique value's — in source order.
// Partitions are interleaved arbitrarily. A source transaction is not
// reassembled: each message is its own Txn, so the target may briefly show
// part of a source transaction; it converges to the source.
//
// # Topics
//
// Config.Topics holds names or globs, matched against the cluster's
// topics at Open and every Rescan. A partition in the checkpoint resumes
// at its offset; a partition first seen at Open starts at Config.Start
// (earliest or latest); one discovered later starts at its earliest offset,
// since everything in it is new. A checkpointed offset below the
// partition's earliest (deleted by retention) is a fatal error: the data
// is gone and a silent jump would lose it.
//
// Usage sketch:
//
//	src, err := kafka.Open(ctx, kafka.Config{Brokers: b, Topics: []string{"hamal.app.*"}}, resume)
//	for { txn, err := src.Next(ctx); … }
package kafka
