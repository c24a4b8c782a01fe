// Package mysql is Hamal's MySQL/MariaDB sink: it applies batches of
// ready Txns (in seq order; a Txn may follow one it depends on) to one
// target, replay-safely, in one target transaction per batch. It owns the statement shapes, the literal
// encoding of row values, the target-side schema cache, the fencing lease,
// and the line between transient and fatal target errors.
//
// # Statement shapes
//
// One Apply is one target transaction (commit coalescing). Pool
// connections run with autocommit=0, so the first statement opens the
// transaction and COMMIT ends it. Every statement is a text-protocol
// COM_QUERY (never a prepared statement, which go-mysql runs as
// prepare/execute/close, three round trips), and the statements of a batch
// are queued and sent with its COMMIT as one multi-statement
// (CLIENT_MULTI_STATEMENTS): a batch costs one round trip, which is what a
// cross-datacenter link charges for. The server runs them in order and
// stops at the first error; the error names that statement's table and
// the batch is rolled back. A read that must see the batch's earlier
// writes (conflict detection) sends the queue first; the queue is also
// sent when it would pass the statement size limit below.
//
// The batch is first reduced to its net effect per (table, row key), where
// the row key is event.Table.RowKey (the primary key, else the first NOT
// NULL unique key). Changes are folded in order: an insert or update makes
// the after-image the row's final state; a delete, or an update that
// changes the row key, makes "absent" the final state of the before-key.
// Then, per table, the sink executes
//
//	DELETE FROM `s`.`t` WHERE `k` IN (…)                 -- or (`k1`,`k2`) IN ((…),(…))
//	SELECT `k` FROM `s`.`t` WHERE `u` IN (…) AND NOT `k` IN (…) FOR UPDATE
//	REPLACE INTO `s`.`t` (`c1`,…,`cn`) VALUES (…),(…)    -- full after-images
//
// deletes first, each chunked at 1000 rows or 1 MiB (or half of
// max_allowed_packet). The SELECT is there only on a one-way channel and
// for a table with a unique key besides its row key: it reads the rows
// the REPLACE will remove for an incoming unique value (rows the batch
// does not write, so ones only the target had), which the sink counts
// (collision.go); with sites set the same query is a conflict check. Tables go in name order and rows in key order,
// whatever order the batch touched them in: every worker then takes its
// row locks in one global order, which cut the deadlocks (1213) between
// concurrent batches in `make demo` from about 170 to 15–40 per 10k Txns. Rows whose keys fold to the same value under a
// case-insensitive, PAD SPACE comparison but differ byte-wise ('a' and
// 'A') are never merged: the sink executes what it has so far, in the same
// transaction, and goes on, so order is kept whatever the collation.
//
// # Why replay converges (DESIGN.md guarantee 2)
//
// After a restart the source resumes at the checkpoint and a suffix of
// already-applied Txns is applied again, in order, onto a target that may
// be ahead. Each statement shape is idempotent on its own and tolerant of a
// target that is ahead:
//
//   - An insert of an existing row, or an update whose before-row is gone
//     or already changed, is a REPLACE of the full after-image: the row ends
//     equal to the image whatever was there.
//   - A delete of a missing row deletes nothing.
//   - An update changing the row key deletes the old key and REPLACEs the
//     new image, so it converges whether the row sits at the old key, the
//     new one, or neither.
//   - A unique value that moved from row A to row B: replaying "B gets v"
//     while A (target ahead or behind) still holds v would fail with a
//     duplicate key under INSERT … ON DUPLICATE KEY UPDATE, or update the
//     wrong row. REPLACE instead deletes every row conflicting on the
//     primary key or any unique key before inserting, so B gets v and A is
//     removed. A is not lost: whatever A became later is a later Txn of the
//     same replayed suffix (it conflicts with this one on v, so the DAG
//     orders it after), and its REPLACE writes A's later image back. At the
//     end of the suffix every row that exists on the source holds its final
//     image, and every row deleted on the source was deleted by its own
//     replayed delete. On a one-way channel such a removal of A, when "B gets v"
//     and A's later change fall in different batches, is counted as a
//     unique replacement: without a fence the sink cannot tell it from a
//     row only the target had.
//
// Extra target-only columns are reset to their defaults by REPLACE (it is
// a delete plus an insert); DELETE triggers fire for it; foreign keys are
// not checked (foreign_key_checks=0), because independent Txns commit in
// any order across batches, and a batch's statements go in table order.
//
// # Sessions
//
// Every connection sets time_zone='+00:00' (go-mysql renders TIMESTAMPs in
// UTC), NAMES utf8mb4, foreign_key_checks=0, unique_checks=1 and
//
//	sql_mode='STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES'
//
// Strict stays on: a value the source stored fits the same column on the
// target, so strict mode only fires on a real schema mismatch (a narrower
// target column), which must stop the channel rather than truncate data.
// NO_AUTO_VALUE_ON_ZERO lets id 0 round-trip; leaving out NO_ZERO_DATE and
// NO_ZERO_IN_DATE and adding ALLOW_INVALID_DATES accepts every date a
// lenient source may hold. NO_BACKSLASH_ESCAPES and ANSI_QUOTES are never
// set: the literal encoding relies on that. Pool sessions use READ
// COMMITTED (fewer gap locks between workers) unless the target's
// binlog_format is STATEMENT.
//
// # Literals
//
// Values arrive as go-mysql v1.16.0 decodes them and are appended to a
// reused buffer, choosing the form from the target column (information_schema,
// read once per table and cached until the next DDL):
//
//	nil                          NULL
//	int*/uint* (ENUM index, YEAR) decimal; a number sets the ENUM index
//	int64 in BIT or SET columns  unsigned decimal (the bits, also bit 63)
//	float64                      shortest round-trip digits ('g', -1, 64)
//	float32                      the same digits of float64(v): exact, and in
//	                             range for FLT_MAX; NaN and ±Inf are errors
//	DECIMAL string               unquoted when it is [-]digits[.digits]
//	DATE/TIME/DATETIME/TIMESTAMP quoted string
//	string/[]byte, utf8mb4 text  quoted, escaping \0 ' " \ \n \r \x1a (also JSON)
//	string/[]byte, other charset _latin1 X'…' (the column's charset): no conversion
//	string/[]byte, binary        X'…' (BINARY, VARBINARY, BLOB, geometry)
//
// The shorter float32 digits ('g', -1, 32) are not used: the server reads
// them as a double first, and "3.4028235e+38" (FLT_MAX) is out of FLOAT's
// range as a double. The exact double digits also make a FLOAT compare
// equal in a WHERE clause, where the server compares as doubles.
//
// # Multi-site (Config.Site)
//
// With a site the sink also writes the origin marker (marker.go), detects
// and resolves conflicts, comparing each column as the binlog carries it
// (conflict.go), keeps the replay fence that tells a replay from a
// conflict (fence.go), clears unsynced owners (unsynced.go) and flags
// foreign writes of the ownership guard (ownership.go). Its tables live in
// Config.HamalSchema, created utf8mb4 whatever the server's default.
//
// # Keyless tables
//
// A table with neither a primary key nor a NOT NULL unique key arrives as
// barrier Txns. Unless Config.AllowKeyless matches it, applying it is a
// fatal error naming the table. When allowed, its changes run in order:
// delete = DELETE … WHERE every column <=> its value LIMIT 1; insert =
// INSERT; update = both. Replay risk: these shapes are not idempotent. A
// replayed insert adds a duplicate row, and a replayed update inserts its
// after-image again. Since such Txns are barriers and the checkpoint is
// persisted after each barrier, only a crash between the target COMMIT and
// that checkpoint write replays one, but then the table may end up with
// extra rows. Rows that differ only in case or trailing spaces under the
// column's collation also match each other.
//
// # DDL
//
// A DDL Txn arrives alone. It runs on a connection of its own opened in
// DDL.Schema (so pool connections never change database), with the
// source's reading flags (DDL.SQLMode: ANSI_QUOTES, NO_BACKSLASH_ESCAPES,
// …) added to the session's sql_mode, so it reads as written. On replay,
// "already exists / duplicate column or key / unknown table / can't drop /
// database exists / doesn't exist" (1050, 1060, 1061, 1051, 1091, 1007,
// 1008, and 1146 for RENAME and DROP) are logged and tolerated. Afterwards
// every cached table description is dropped.
//
// # Errors
//
// Deadlock (1213), lock wait timeout (1205), interrupted or lost
// connections (EOF, resets, 2006, 2013, 1927, …) and read-only targets
// during a failover (1290, 1836) are marked retry.Transient; the caller
// retries the same batch, and a lost connection is replaced on next use.
// Everything else is fatal, worded "apply batch at <position of the first
// Txn>: table <schema.table>: <cause>", the cause wrapped with %w. A
// missing target table or column is fatal and names the fix.
//
// # Lease
//
// Open takes GET_LOCK('hamal/<channel>', 0) on a dedicated connection and
// fails with ErrLeaseHeld when another session holds it. Every unit (the
// target protocol of package sink, unit.go) proves the lease inside its
// transaction: its last statement before COMMIT, in the same
// multi-statement text (no extra round trip), is
//
//	SET autocommit=IF(IS_USED_LOCK('hamal/<channel>') <=> <lock session id>, @@autocommit, 2)
//
// which fails (error 1231) unless the lock is held by this process's lock
// session when it runs; the server then never reaches COMMIT and the unit
// is rolled back: fatal ErrLeaseHeld when another session holds the lock,
// transient while nobody does. It runs after the data, when every row the
// unit writes is locked, so a successor's writes are ordered after the
// unit. Copy and DDL run the same proof (DDL on its connection right
// before the statement, since a DDL commits on its own). The lock
// connection is pinged every 2 s and re-acquired when lost; the ping only
// saves work, the proof is what fences.
//
// # Usage
//
//	s, err := mysql.Open(ctx, mysql.Config{Addr: "db:3306", User: "hamal",
//		Password: pw, Channel: "eu-to-us", Workers: 16, Logger: log})
//	if err != nil { … }              // wrong password, unreachable, ErrLeaseHeld
//	defer s.Close()
//	err = s.Apply(ctx, batch)        // from up to Workers goroutines
//	if retry.IsTransient(err) { … }  // back off, apply the same batch again
package mysql
