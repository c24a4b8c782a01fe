// Package snapshot is the first phase of a new MySQL/MariaDB channel
// started with `source.start: snapshot`: it creates the target's missing
// schemas and tables, copies every row the source holds, and hands the
// channel the position its stream starts at. It is a pipeline.Seeder: the
// channel runs it with its sink open, before it opens the source, and
// saves the returned position as its first checkpoint.
//
// # Phases
//
//	check ──▶ position ──▶ schema ──▶ copy ──▶ hand-off
//	  └ first start only ┘    └── every start, resuming ──┘
//
// Each phase in turn:
//
//   - check (first start): the source's preflight (binlog settings,
//     grants), then every table matching the filters: it needs a key to
//     walk (primary key, or a NOT NULL unique key); on the target it is
//     missing (created, when sink.create_tables), or has the source's
//     definition (columns with type, charset, collation and nullability;
//     unique keys) and no rows. Anything else refuses the start, naming
//     both definitions, before anything is written (Check is the same for
//     hamal check).
//   - position (first start): SnapshotPosition P (source/mysql), then the
//     tables' key ranges (tablecopy.Split), persisted under
//     snapshot/<channel> in the channel's Pebble store before any row is
//     read. P never changes afterwards.
//   - schema: CREATE DATABASE / CREATE TABLE from the source's SHOW CREATE
//     statements, as DDL Txns through the sink's Apply (fencing lease,
//     loop guard comment, "already exists" tolerated on a replay).
//   - copy: the shared copier (package tablecopy) over the persisted
//     segments, several tables and key ranges at once, each chunk written
//     through the sink's Copy (one target transaction with the lease
//     checked and the origin marker first) and its last key persisted once
//     the target holds it. A restart (kill -9 included) resumes after the
//     last persisted chunk of every segment.
//   - hand-off: the state is marked done, with the source's position at
//     that moment (ConsistentAt); Seed returns P, the channel saves it as
//     its checkpoint and streams from it.
//
// # One position for a parallel, resumable copy
//
// A copy read by several connections at once, and resumed after a kill -9
// by new connections at a later moment, is not read at one instant, and
// cannot be: a restarted copy necessarily reads after the chunks copied
// before the crash. So the design does not ask the reads to share a
// moment. It asks two things of P and of every read:
//
//  1. every read starts after P was taken, so it sees every transaction
//     up to P: nothing before P is lost;
//  2. the stream from P replays every transaction after P with the sink's
//     replay-safe statements (full after-images by REPLACE, deletes by
//     key; DESIGN.md guarantee 2), so a row the copy read at a later
//     moment converges: replaying what it already holds changes nothing in
//     the end, the last change of each row wins, and a row deleted after
//     being read is deleted by its own replayed delete. Nothing after P is
//     lost or doubled.
//
// P must be exact, not merely early enough in time: MariaDB writes a
// transaction to the binlog (and @@gtid_binlog_pos) a moment before its
// rows are visible, so a position read from that variable may name a
// transaction a read right after it misses, which the stream from that
// position would never send. MariaDB's START TRANSACTION WITH CONSISTENT
// SNAPSHOT reports the binlog position matching its view exactly
// (binlog_snapshot_file / binlog_snapshot_position), and BINLOG_GTID_POS
// maps it to a GTID position: lock-free, no privilege. MySQL has no such
// variable: there P is read under a FLUSH TABLES WITH READ LOCK held for
// two reads (it waits for commits in flight; RELOAD needed).
//
// "The hand-off position equals the snapshot position" therefore means:
// the stream starts at the P recorded before the first chunk was read,
// however many times the copy was resumed in between, never at a resumed
// copy's later moment (which would lose the changes made between P and
// the restart to rows copied before it). Tests assert it by reading P from
// the state before the first kill and the position the source's binlog
// dump started at after the hand-off, and by comparing the target with the
// source by checksum while a writer changed rows the whole time.
//
// Considered and not taken:
//
//   - One snapshot shared by every copier connection (mydumper's brief
//     FLUSH TABLES WITH READ LOCK or BACKUP STAGE BLOCK_COMMIT while each
//     connection starts its own consistent snapshot): an uninterrupted
//     copy would be exact as of P, but the connections hold long
//     transactions for the whole copy (undo/purge lag on the source, and a
//     metadata lock on every copied table, so an application's ALTER
//     would wait and stall every query queued behind it), it needs a
//     global lock and RELOAD, and a resumed copy still needs the replay
//     above. One mechanism covers both cases; here every chunk is a short
//     autocommit SELECT.
//   - DBLog-style watermarks (a low/high watermark row written to the
//     source around each chunk, the chunk merged into the stream between
//     them): no replay of the overlap, which matters for sinks whose
//     consumers see every change (Kafka). It needs write access and a
//     signal table on the source, and interleaves copying with streaming.
//     The MySQL sink is replay-safe by design, so the overlap costs only
//     re-applying what changed during the copy; the copy only needs SELECT.
//
// # Fencing and markers
//
// The copy writes through the channel's sink, never beside it: the sink is
// open for the whole phase, so its fencing lease (GET_LOCK on the target)
// is held, and every chunk's transaction checks it before writing and
// again before COMMIT; a second process on the same channel cannot copy.
// With sites, every chunk carries the origin marker of [source site, sink
// site], and the DDL the loop guard comment, so a channel replicating the
// target back drops the copied rows as it drops the channel's own.
//
// # What it does not do
//
// A table without a primary key or NOT NULL unique key is refused (the copy
// walks a key). A DDL on a copied table during the copy stops it with
// tablecopy.ErrChanged (the target table was created with the old
// definition): stop hamal, drop the copied target tables, remove the
// channel's checkpoint.dir and start again. The copy needs a MySQL or
// MariaDB sink and no relay (the relay would read from the source before
// the position is known).
//
// Usage sketch:
//
//	snap, err := snapshot.New(snapshot.Config{Channel: "eu", Source: srcCfg,
//		Target: dialTarget, CreateTables: true, Store: store, Logger: log})
//	ch, err := pipeline.New(pipeline.Options{..., Seed: snap})
package snapshot
