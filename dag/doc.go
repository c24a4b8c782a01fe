// Package dag is Hamal's conflict-key scheduler: it admits items in source
// order, builds the dependency DAG between them from their conflict keys, and
// hands out the items whose predecessors have all been applied.
//
// The package is generic over [Item] and imports no database or event
// package; anything that can name its conflict keys can be scheduled. The
// model is tiflow's pkg/causality: dependents are released when an item is
// Done, not when it is handed out.
//
// # What it owns
//
//   - The window: at most Options.MaxTxns items and Options.MaxBytes bytes are
//     admitted and not yet Done. When the window is full, Add blocks; this is
//     the backpressure that stops the source reader.
//   - The dependency edges and the ready queue. Workers pull batches of ready
//     items with NextBatch and report them applied with Done.
//
// It does not own positions or checkpoints: turning out-of-order Done(seq)
// into a low watermark is the job of package checkpoint.
//
// # Invariants
//
//   - Per-key order: an item depends on the latest earlier item, still
//     pending (admitted, not Done), that shares any of its conflict keys. By
//     chaining, items sharing a key are applied strictly one after another, in
//     seq order.
//   - Barriers: a barrier depends on every item admitted before it that is
//     still pending, and every item admitted after it depends on it. A barrier
//     therefore runs alone.
//   - An item with no keys that is not a barrier depends only on the latest
//     pending barrier, if any.
//   - Ready items are pairwise independent, so any set of them may be applied
//     concurrently; NextBatch hands them out oldest seq first.
//   - Chains (Options.Chain): an item whose every pending predecessor is in
//     the batch being built joins it, right behind them, so a key's run of
//     items goes out as one batch. The batch is in seq order, and the
//     consumer applies it in that order as one unit. An item reported Done
//     before its predecessors takes effect once they are Done. Barriers
//     never join a batch, and nothing joins theirs.
//   - Linger (Options.Linger): while items handed out earlier are running
//     (not yet Done), NextBatch waits up to Linger for a full batch
//     (maxItems ready, or maxBytes of them) before it hands out fewer.
//     With nothing running it never waits, so an idle consumer sees no
//     added latency; under load, fewer and larger batches cost the
//     consumer less per item (one commit per batch). Waiting consumers
//     are woken only when a batch fills, when nothing runs any more, when
//     their wait expires or on Close, not per ready item.
//   - Bounded memory: the state held per item, including the per-key index,
//     is dropped when the item is Done.
//
// A hash collision between two different keys only adds a false dependency;
// it never loses one.
//
// # Concurrency
//
// Add is called from one goroutine (the reader), with strictly increasing
// seqs. NextBatch, Done, Stats and Close may be called from any goroutine.
// Close wakes every blocked Add and NextBatch with [ErrClosed].
//
// # Usage
//
//	s := dag.New[*event.Txn](dag.Options{MaxTxns: 10000, MaxBytes: 64 << 20})
//
//	// reader
//	go func() {
//		for {
//			txn, err := src.Next(ctx)
//			if err != nil { ... }
//			if err := s.Add(ctx, txn.Seq, txn); err != nil { ... }
//		}
//	}()
//
//	// each worker
//	for {
//		batch, err := s.NextBatch(ctx, 64, 4<<20)
//		if err != nil { return err } // ctx.Err() or dag.ErrClosed
//		applyBatch(ctx, batch)
//		for _, e := range batch {
//			if err := s.Done(e.Seq); err != nil { return err }
//		}
//	}
package dag
