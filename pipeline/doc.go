// Package pipeline runs one channel: source → DAG → workers → sink, with
// the checkpoint tracker turning out-of-order completions into a durable
// resume position.
//
// A Channel is three parts, one job each:
//
//   - supervisor (supervisor.go): Run's loop over sessions and the State
//     machine below; Pause and Resume.
//   - session (session.go): the data path of one run from the checkpoint.
//   - observer (observer.go, metrics.go): the read-only view, Status and
//     the channel's Prometheus metrics.
//
// Lifecycle (Run):
//
//	starting → running ⇄ paused
//	    │         │
//	    │         ├─ transient error (connection lost, deadlock): retried with
//	    │         │  backoff; a source is reopened at the checkpoint after
//	    │         │  everything in flight was applied; state "retrying"
//	    │         └─ fatal error: stop handing out work, persist the watermark,
//	    │            state "error" with last_error; POST /resume starts over
//	    │            from the checkpoint
//	    └─ ctx done (SIGTERM): stop reading, drain in-flight Txns, persist,
//	       state "stopped"
//
// Goroutines of a session: one reader (Source.Next, numbering Txns with a
// dense seq, Tracker.Issue, DAG Add; it blocks when the DAG window is
// full); Options.Workers workers (DAG NextBatch, Sink.Apply with retries,
// DAG Done and Tracker.Done; they hold their batch while paused); the
// persister (saves the tracker's watermark every CheckpointInterval, and on
// Flush after a barrier, before a reopen and at the end). At shutdown the
// reader stops, the session waits for Tracker.Drained (at most
// DrainTimeout), then stops the workers and flushes.
//
// Positions: the reader owns the source position (the last Txn read); the
// tracker's watermark is the applied position; the persister writes it to
// the checkpoint store, which is the authority a session resumes from. The
// observer shows them and owns none; until a session has read a Txn it
// shows the checkpoint the session resumed from as the source position too
// (seq 0), so a channel restarted with nothing new to read is never blank.
//
// Invariants: the checkpoint only names a position whose Txn and all
// earlier Txns were applied (checkpoint.Tracker); the window of Txns read but
// not applied is bounded by the DAG; one goroutine reads the source; a
// session has ended, its workers and persister stopped, before the next
// one starts. The pipeline imports no engine and not the relay: optional
// capabilities (Positioner, Contacter, ConflictCounter, ForeignWriteCounter,
// UniqueReplacementCounter, RelayLog) are small interfaces checked at run
// time.
//
// Metrics are registered by New, labelled channel=<Name>, and unregistered
// by Close: a channel created again under the same name serves its own
// numbers only.
//
// Usage sketch:
//
//	ch, err := pipeline.New(pipeline.Options{Name: "demo", OpenSource: ..., OpenSink: ..., Store: store,
//		Registerer: reg})
//	if err != nil { ... }
//	defer ch.Close()
//	err = ch.Run(ctx) // until ctx is done; ch.Status(), Pause, Resume from any goroutine
package pipeline
