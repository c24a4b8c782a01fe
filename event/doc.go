// Package event holds Hamal's event model: the committed source transaction
// (Txn), its row or command changes (Change), the opaque resume Position, and
// the conflict keys the DAG orders by.
//
// Invariants:
//
//   - A Txn is one committed source transaction; sources emit Txns only at
//     commit boundaries. The engine assigns Seq (dense, increasing); a source
//     sets only Pos, CommitTime, Kind, Changes and, where it reads markers,
//     Origin.
//   - Pos is the position *after* the Txn: resuming there never re-reads it.
//   - Op and Kind start at iota+1, so a zero value is always invalid.
//   - ConflictKeys are 64-bit hashes of (namespace, key name, key values) for
//     the primary key and every unique key of both images. A Txn whose keys
//     cannot be known is a barrier. A hash collision only adds a false
//     dependency, never loses one.
//
// Usage sketch:
//
//	txn := &event.Txn{Kind: event.KindDML, Pos: pos, CommitTime: ts,
//		Changes: []event.Change{{Op: event.OpInsert, Table: tbl, After: row}}}
//	keys := txn.ConflictKeys() // computed once, cached
package event
