// Package tablecopy copies MySQL/MariaDB tables from sources to targets:
// in key order, in chunks, several segments at once, value-exactly, and
// resumably from the last chunk every target acknowledged. It is the one
// copier of Hamal: a new channel's snapshot (package snapshot, `source.start:
// snapshot`) and a migration's copy phase (package reshard) both run it.
//
// What it owns:
//
//   - Describe: a table's copied columns (generated ones are left out), the
//     key the copy walks (the primary key, else the first unique key of NOT
//     NULL columns) and the server's row estimate.
//   - Keyset walking (keyset.go): "key tuple > last" in the expanded form
//     the range optimizer uses as an index range, with key values written
//     back exactly (integers bare, binary strings as X'…', text as
//     _charset X'…' in its column's own character set).
//   - Split: a table's key range cut into segments for parallel copying.
//   - Copier: Workers goroutines, each holding one source connection and
//     copying one segment at a time: a reader streams chunk k+1 (SELECT …
//     WHERE key > last ORDER BY key LIMIT n over the binary protocol)
//     while chunk k is written to every target it routes to, and the
//     segment's last key is handed to Options.Save only once every target
//     acknowledged the chunk, in chunk order.
//   - The write path (encode.go): each chunk is one transaction per target,
//     LOAD DATA LOCAL INFILE … REPLACE from the copier's own buffer
//     (FormatLoad), or REPLACE INTO … VALUES for a target that refuses
//     LOCAL INFILE (FormatInsert).
//   - RowHash: the per-row hash verification compares, exact where a copy
//     can lose digits (FLOAT).
//
// Invariants:
//
//   - Exact values: rows are read over the binary protocol, where FLOAT and
//     DOUBLE arrive as their IEEE bits (the text protocol prints FLOAT with
//     6 significant digits), and with character_set_results=binary, so text
//     keeps its column's bytes; see encode.go for how each value is
//     written. A copy never converts a character set or rounds a number.
//   - Resumable: a segment's saved last key is a key every target holds;
//     the chunk after it may have been written too (a kill -9 between the
//     write and the save). REPLACE makes writing it again converge: the row
//     ends as the copy read it, and a target row holding a unique value of
//     a copied row is removed, since the copy's caller streams every change
//     after its start position with the sink's replay-safe statements,
//     which restore it as the source has it.
//   - Bounded memory: a worker holds two chunks (the one read, the one
//     written); a chunk aims at Options.ChunkBytes, reading fewer rows
//     after a chunk of wide rows.
//   - A table that changes shape while it is copied (a DDL) stops the copy
//     with ErrChanged rather than writing rows into the wrong columns.
//
// Who calls what: Run is called by one goroutine; Options.Save and
// Options.Copied are called from the workers (one segment's calls from one
// worker, in order); Target.Write from several workers at once.
//
// Usage sketch:
//
//	t, _ := tablecopy.Describe(conn, "app", "orders")
//	segs, _ := tablecopy.Split(conn, t, 0, 4)
//	c, _ := tablecopy.New(tablecopy.Options{Sources: srcs, Targets: tgts,
//		Tables: map[string]*tablecopy.Table{t.String(): t}, Save: persist})
//	err := c.Run(ctx, segments) // again after a restart, with the saved segments
package tablecopy
