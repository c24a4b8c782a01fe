// Package mongo is Hamal's MongoDB sink: it applies batches of ready Txns
// (in seq order; see sink.Sink) to a MongoDB deployment (or anything speaking
// its wire protocol) with idempotent statement shapes, so replaying any
// suffix converges (DESIGN.md guarantee 2).
//
// # Statement shapes
//
// The batch is first reduced to its net effect per (namespace, _id), in
// batch order: the last change of a document in the batch decides it (an insert, update or
// replace makes the full post-image its state, a delete makes it absent).
// Each namespace's survivors then go in one unordered BulkWrite:
//
//	replaceOne({_id: id}, fullDocument, {upsert: true})
//	deleteOne({_id: id})
//
// Since every _id appears once per bulk write, the server may run them in
// any order. A replayed insert or update replaces the document with the
// same image; a replayed delete deletes nothing. Replace (not $set) keeps
// fields the source removed from coming back.
//
// # What a change looks like
//
// Changes of a MongoDB source carry no Table: After[0] holds the full
// post-image as bson.Raw (with its _id), Before[0] the document key
// ({_id: …}) as bson.Raw for deletes. Row changes of a MySQL source carry
// a Table; the sink turns each row into a document whose _id is the primary
// key value (or a sub-document of the key columns when the key has more
// than one), with one field per column:
//
//	integers                     int64 (unsigned above 2^63-1: Decimal128)
//	FLOAT, DOUBLE                double (FLOAT via its shortest decimal digits)
//	DECIMAL                      Decimal128 (string when it has more than 34 digits)
//	DATE/TIME/DATETIME/TIMESTAMP string as MySQL prints it (TIMESTAMP in UTC)
//	text                         string; binary columns and non-UTF-8 bytes: binary
//	NULL                         null
//
// # Errors
//
// Network errors, timeouts and errors labelled RetryableWriteError or
// TransientTransactionError are marked retry.Transient. A duplicate key on
// a secondary unique index, a validation failure and anything else are
// fatal, naming the namespace and the position of the batch's first Txn.
//
// # Barriers
//
// The drop, renameCollection and dropDatabase commands a MongoDB source
// emits as DDL Txns are run on the target (ddl.go); replays converge: an
// applied barrier's position is recorded in hamal.applied_ddl, and a
// repeat that the record missed tolerates "already gone". Other DDL (a
// MySQL source's SQL) is a fatal error naming the statement.
//
// # Units, origin marker and lease
//
// Batches go through package sink's target protocol (unit.go). On a
// replica-set target (hello names a setName) each run of one path is one
// session transaction: with Config.Site its first write replaces the
// unit's marker document in hamal.origin_marker (marker.go), then the bulk
// writes, then the lease proof (lease.go). On a standalone server or
// FerretDB, which have no transactions, a unit is its bulk writes without
// a marker, the lease is checked right before them, and Open logs that
// fencing and loop prevention need a replica-set target.
//
// The lease: Open takes hamal.lease {_id: "<channel>"} (ErrLeaseHeld
// while another process renews it; a holder that stopped renewing for
// Config.LeaseTTL is taken over), and each unit updates its slot's
// document hamal.lease {_id: "<channel>/<slot>"} only while it names this
// process, inside the transaction, so a process that lost the lease can
// never commit a unit next to its successor.
//
// Usage sketch:
//
//	s, err := mongo.Open(ctx, mongo.Config{URI: "mongodb://127.0.0.1:27017"})
//	err = s.Apply(ctx, batch)
//	s.Close()
package mongo
