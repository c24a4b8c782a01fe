// Package checkpoint owns the resume point of a channel: it turns the
// out-of-order completion of Txns into a low watermark (Tracker), and
// persists that watermark in a Pebble database (Store, Persister).
//
// # Invariants
//
//   - The checkpoint only ever names a position whose Txn and all earlier Txns
//     were applied. The Tracker's watermark is the highest seq W such that
//     every issued seq <= W is done; a seq that is not done holds it back,
//     however many later seqs are done.
//   - The watermark never moves backwards, and the Persister never saves a
//     checkpoint older than the last one it saved.
//   - A Save that returned is durable (pebble.Sync): after a crash, even
//     kill -9, Load returns it or a later one, never an earlier one.
//   - Memory is bounded by the Txns in flight: the Tracker keeps only issued
//     Txns above the watermark.
//
// Seqs are numbered per process run; a Checkpoint stores its Seq for
// information only. A restart resumes from Checkpoint.Pos.
//
// # Store layout
//
// One Pebble directory per process, locked against other processes. Keys are
// namespaced: "checkpoint/<channel>" holds a Checkpoint as JSON; other
// packages keep their records under their own prefixes ("schema/<channel>/…",
// "migration/<plan>/…") through Get, Set, Delete and Scan.
//
// # Usage
//
//	store, err := checkpoint.Open(dir, checkpoint.WithLogger(log))
//	if err != nil { ... }
//	defer store.Close()
//	cp, ok, err := store.Load(channel) // resume from cp.Pos when ok
//
//	tracker := checkpoint.NewTracker(0)
//	persister := checkpoint.NewPersister(store, channel, tracker, time.Second, log)
//	go persister.Run(ctx) // saves every second, and once more at stop
//
//	// reader goroutine, for each Txn handed to the DAG:
//	tracker.Issue(checkpoint.Mark{Seq: txn.Seq, Pos: txn.Pos, CommitTime: txn.CommitTime})
//	// workers, when a Txn is applied:
//	tracker.Done(txn.Seq)
//	// after a barrier or DDL is applied, so it is not replayed:
//	persister.Flush()
//	// drain: wait until everything issued was applied, then persist:
//	<-tracker.Drained()
//	persister.Flush()
package checkpoint
