// Package relay is Hamal's relay log: a local, segmented, checksummed log
// between a channel's source and its applier. The source is read at full
// speed into segment files on local disk; the applier reads them back
// through a source.Source. Memory stays bounded whatever the lag; disk is
// bounded by Options.MaxBytes. It wraps any source engine and knows none
// (docs/relay.md is the operator's guide).
//
// What it owns:
//
//   - The segment files of Options.Dir (segment.go: "HAMALRL1" then
//     length·CRC-32C·payload records; codec.go: the payload, a binary
//     encoding of an event.Txn that keeps every field and the Go type of
//     every row value) and the flock on Dir (lock.go): one Relay per dir.
//   - The relay's two positions, saved under relay/<channel> in the
//     checkpoint store: how far it read from the source (read) and which
//     record the applier's checkpoint names (applied). The channel's
//     checkpoint stays the authority on what was applied.
//   - Recovery (recover.go): a torn or corrupt last record is truncated; a
//     checkpoint the relay does not hold discards the relay and reads the
//     source again from the checkpoint; a segment of another format
//     version is refused (FormatError), never read nor truncated.
//
// Goroutines, while a Relay is open:
//
//   - reader (reader.go): opens the source after the last record held and
//     pulls Txns into a bounded channel (readerQueue); a transient source
//     error reconnects after the last Txn read, with backoff (state
//     "source retrying"); a fatal one stops the pair (state "error").
//   - writer (writer.go): the one goroutine that appends records. It
//     groups what arrives within groupDelay, writes it to the active
//     segment, syncs it under FsyncAlways, publishes it (the applier may
//     read up to there) and seals a segment at SegmentBytes. When the next
//     record would pass MaxBytes it waits for room (state "relay full"):
//     backpressure, nothing is dropped. Only the writer seals the active
//     segment; others ask it through sealReq.
//   - flusher (flusher.go, FsyncBatch only): every BatchInterval, syncs the
//     active file while the writer goes on writing.
//   - cleaner (clean.go): every Options.Poll, reads the applier's
//     checkpoint, moves the applied mark, deletes sealed segments wholly
//     applied, asks the writer to seal an applied active segment when the
//     relay is full or the segment is older than MaxAge, and saves the
//     positions.
//   - The applier's view (source.go, from OpenSource) runs on the caller's
//     goroutine: Next waits for published records and reads them from the
//     files with its own descriptor.
//
// Reader and writer are a pair started together; a third goroutine waits
// for both and records how they ended. OpenSource restarts a pair that
// stopped on an error. Close cancels everything, waits for every goroutine,
// seals the active segment and saves the positions.
//
// Invariants:
//
//   - One lock: Relay.mu guards the shared state (the segment list and each
//     segment's size, last seq and sealed flag, both marks, the reader's
//     State, the served list, the file the flusher may sync). It is never
//     held across a wait nor across disk I/O on the active segment. The
//     writer's own state (Relay.w) has no lock: only the writer touches it
//     (Open before the first writer starts, Close after the last stopped).
//     The view has a mutex of its own, guarding its file against Close.
//   - Relay seqs are dense and increasing across segments and restarts; a
//     segment is named by the seq of its first record.
//   - The applier is never served a record beyond what was published, and
//     published bytes are whole records.
//   - A segment is deleted only once sealed and every record in it is
//     applied (named by, or before, the applier's checkpoint); MaxAge never
//     removes an unapplied record.
//   - Durability by policy (Fsync): always syncs each group before it is
//     published; batch within BatchInterval; never leaves it to the OS. A
//     sealed segment is always synced before it is closed. What an OS
//     crash loses is read again from the source.
//   - Notification: every change a waiter may care about (published
//     records, a seal, a state change, a finished sync) closes r.notify and
//     replaces it; waiters take the channel under r.mu and wait without it.
//
// Usage:
//
//	rl, err := relay.Open(relay.Options{Channel: name, Dir: dir, Store: store,
//		Open: openRealSource, Fsync: relay.FsyncBatch})
//	if err != nil { ... } // *DirInUseError: another process has dir
//	defer rl.Close()
//	// The channel reads through the relay, and shows its Status:
//	opts.OpenSource, opts.Relay = rl.OpenSource, rl
package relay
