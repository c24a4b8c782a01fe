// Package loopguard decides, per transaction, whether a channel forwards or
// drops it, so that sites replicating to each other (dual-master A⇄B, a star
// A⇄C⇄B, any graph of channels) never echo a change back. Pure logic, no
// I/O.
//
// Every Txn carries a path: the sites that have applied it, origin first.
// A channel from site S to site T, for each Txn its source returns:
//
//   - stamps it: a Txn read without a marker was written by an application
//     at S, so its origin and path become [S]; a path read from a marker
//     that does not end in S gets S appended;
//   - drops it when T is already on the path (T has it: forwarding would
//     echo), and otherwise appends T and forwards it.
//
// The sink writes the path into its marker inside the same target
// transaction as the data (MySQL: a row of hamal.origin_marker; DDL: a
// leading comment, see Comment), and the source of the next hop reads it
// back into Txn.Path and Txn.Origin. For A⇄B this is the classic rule
// "drop when the origin is the sink's site"; the path also makes relays
// loop-free: a write at A reaches B through C once and goes back to neither.
//
// One target transaction carries Txns of one path only (the pipeline splits
// batches by SamePath), so one marker row describes all of its rows.
//
// Usage sketch:
//
//	g, err := loopguard.New("sz", "sh") // channel sz → sh
//	if !g.Admit(txn) { /* mark done without applying */ }
package loopguard
