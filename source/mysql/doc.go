// Package mysql is Hamal's MySQL/MariaDB source: it poses as a replica
// (go-mysql replication.BinlogSyncer, not canal), reads the row-based
// binlog and emits one event.Txn per committed transaction.
//
// What it owns:
//
//   - Preflight: connectivity and credentials, log_bin, binlog_format=ROW,
//     binlog_row_image=FULL, binlog_row_metadata=FULL, the REPLICATION SLAVE
//     grant, server_id clashes, and the tables matching the filters. Open
//     refuses a source with problems (*PreflightError, fatal), naming each
//     variable and its fix.
//   - The start position: resume (the checkpoint) wins over Config.Start.
//     MariaDB streams by GTID whenever a GTID position is known; a file:pos
//     or "earliest" start is seeded with BINLOG_GTID_POS so later positions
//     still carry the full GTID state. MySQL streams by GTID when gtid_mode
//     is ON, else by file:pos. A GTID or file:pos start is checked
//     against the source first (CheckStart, startcheck.go): ahead of it, in
//     a GTID domain or server it lacks, purged, or beyond the end of its
//     binlog is a fatal *PositionError naming the cause and the fix.
//   - SnapshotPosition (snapshotpos.go): the exact position a copy that
//     reads afterwards can hand the stream (start: snapshot, migrations).
//   - The position codec (Position, EncodePosition, DecodePosition): compact
//     JSON {"gtid":"0-1-42","file":"bin.000002","pos":1234}.
//   - Table filters (include/exclude globs) and the DDL target extractor.
//
// Invariants:
//
//   - A Txn is emitted only at a commit boundary (XID, COMMIT, the end of
//     a standalone statement). Its Pos is the position after it: the GTID
//     set including its GTID and the file/offset after its commit event.
//     Resuming at a Txn's Pos neither repeats nor skips a Txn. One
//     exception: a DDL that opens a group with rows to follow (CREATE
//     TABLE … SELECT) is emitted with the position before that group, so a
//     resume there replays the DDL (sinks tolerate "already exists")
//     rather than losing the rows.
//   - Every event group yields exactly one Txn (two for the exception
//     above): a group whose changes are all filtered out, a filtered DDL,
//     and writes to Hamal's own schema become KindHeartbeat Txns so the
//     position still moves. A binlog heartbeat yields a Heartbeat Txn only
//     when the position moved since the last Txn.
//   - Row values are exactly what go-mysql decodes with UseDecimal=false,
//     ParseTime=false and TimestampStringLocation=UTC; TestValueContract
//     is the table of Go types per column type.
//   - One *event.Table per table shape, shared by every Change of that
//     table and never modified; a new table map with a different shape,
//     or any DDL, gives a new one. Unique keys come from
//     information_schema.STATISTICS (non-prefix, non-primary), cached per
//     table until the next DDL.
//   - Errors: network failures are retry.Transient (the engine closes and
//     re-opens at its checkpoint; go-mysql's own reconnect is disabled,
//     because it would replay a half-read group). A position the source
//     refuses (ERROR 1236) is a fatal *PositionError whose cause comes from
//     the same check (errors.Is ErrPositionPurged or ErrPositionAhead);
//     Hamal never jumps to "current" by itself. Missing column names,
//     statement-based DML and partial row images are fatal, naming the
//     table and the fix.
//   - Memory: go-mysql reads at most 128 events ahead; of the transaction
//     being assembled the reader holds at most Config.ChunkRows changes or
//     Config.ChunkBytes of row events (10,000 and 8 MiB by default): beyond
//     that it returns what it holds as a Partial Txn whose Pos is the
//     position before the transaction, so a checkpoint taken at a chunk
//     resumes at the transaction's start. A transaction inside a MySQL
//     TransactionPayloadEvent is in memory already and is not chunked.
//
// Filtering rules:
//
//   - Rows: system schemas (mysql, information_schema, performance_schema,
//     sys) and Hamal's schema "hamal" are never forwarded; then Exclude
//     globs drop, and with Include globs (Config.Tables) only matching
//     tables pass. Rows of hamal.origin_marker set Txn.Origin from their
//     "origin" column.
//   - Heartbeat (heartbeat.go): HeartbeatWriter writes hamal.heartbeat on
//     the source (pt-heartbeat style, TIMESTAMP(6) in UTC per server_id);
//     rows of that table coming back through the binlog set
//     Txn.Heartbeat on their (Heartbeat-kind) Txn and are never data.
//   - DDL naming tables (CREATE/ALTER/DROP/RENAME/TRUNCATE TABLE,
//     CREATE/DROP INDEX; unqualified names use the statement's schema) is
//     forwarded when any named table passes the row rules. Other DDL
//     (CREATE DATABASE, views, routines, …) is forwarded when its schema
//     (the database it names, else its default schema) is not empty and
//     not a system schema, is not excluded by an Exclude glob of the form
//     "schema.*", and — with Include globs — matches the schema part of
//     one of them. Account and server statements (GRANT, CREATE USER,
//     FLUSH, …) are never forwarded. A statement is read under the
//     sql_mode its Query event carries (ANSI_QUOTES: "x" is a name;
//     NO_BACKSLASH_ESCAPES: a backslash in a string is itself), and the
//     flags that change how it reads travel in event.DDL.SQLMode, so the
//     sink runs it under them. A table statement whose names the filter
//     cannot read is an error that stops the channel, never a skip.
//
// Files, one job each:
//
//   - reader.go: the Reader, Open, Next, Close, stream error classification.
//   - start.go: resolving the start position and starting the binlog dump.
//   - watchdog.go: closing a dump that went silent (no event, no heartbeat).
//   - group.go: the event-group state machine (GTID, BEGIN, XID/COMMIT,
//     payload events, binlog heartbeats) and the Txn it yields.
//   - query.go: classifying Query events and handling DDL.
//   - rows.go: row events into event.Changes; origin marker rows.
//   - schema.go: table maps into event.Tables; unique keys from
//     information_schema, cached until the next DDL.
//   - chunk.go: cutting a huge transaction into Partial Txns.
//   - filter.go, position.go, preflight.go, heartbeat.go, config.go.
//
// Usage:
//
//	r, err := mysql.Open(ctx, mysql.Config{Addr: "db1:3306", User: "hamal",
//		Password: pw, ServerID: 4242, Tables: []string{"app.*"}}, checkpoint)
//	if err != nil { ... } // *PreflightError lists every problem
//	defer r.Close()
//	for {
//		txn, err := r.Next(ctx) // retry.IsTransient(err): Close, re-Open at checkpoint
//		...
//	}
package mysql
