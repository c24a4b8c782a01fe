// Package pipeline runs one channel: source → DAG → workers → sink, with
// the checkpoint tracker turning out-of-order completions into a durable
// resume position.
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
// Invariants: the checkpoint only names a position whose Txn and all
// earlier Txns were applied (checkpoint.Tracker); the window of Txns read but
// not applied is bounded by the DAG; one goroutine reads the source.
//
// Usage sketch:
//
//	ch := pipeline.New(pipeline.Options{Name: "demo", OpenSource: ..., OpenSink: ..., Store: store})
//	err := ch.Run(ctx) // until ctx is done; ch.Status() from any goroutine
package pipeline
