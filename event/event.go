package event

import (
	"fmt"
	"time"
)

// Op is the kind of one change.
type Op uint8

// Operations. The zero value is invalid.
const (
	OpInsert  Op = iota + 1 // a new row: After is set
	OpUpdate                // a changed row: Before and After are set
	OpDelete                // a removed row: Before is set
	OpCommand               // a key-value command (Redis): Args is set
)

func (o Op) String() string {
	switch o {
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpCommand:
		return "command"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Kind classifies a Txn for scheduling and applying.
type Kind uint8

// Txn kinds. The zero value is invalid.
const (
	KindDML       Kind = iota + 1 // row changes, ordered by conflict keys
	KindDDL                       // a schema change; always a barrier
	KindBarrier                   // changes whose keys cannot be known
	KindHeartbeat                 // no changes; only moves the position
)

func (k Kind) String() string {
	switch k {
	case KindDML:
		return "dml"
	case KindDDL:
		return "ddl"
	case KindBarrier:
		return "barrier"
	case KindHeartbeat:
		return "heartbeat"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Position is an opaque resume position. Each source owns its encoding
// (MySQL: GTID set and file:pos; Redis: replid+offset; Mongo: resume token)
// and keeps it human-readable where it can, since String shows it to
// operators. The engine never compares positions; it orders by Seq.
type Position []byte

func (p Position) String() string { return string(p) }

// DDL is a schema change statement as the source executed it.
type DDL struct {
	Schema    string // default schema the statement ran in (USE ...)
	Statement string
	// SQLMode lists the sql_mode flags the statement was written under
	// that change how it reads (ANSI_QUOTES, NO_BACKSLASH_ESCAPES, …),
	// comma-separated; "" for none. A sink runs the statement under them.
	SQLMode string
}

// Txn is one committed source transaction.
type Txn struct {
	Seq    uint64   // dense, engine-assigned
	Pos    Position // resume position after this Txn
	Origin string   // site that first wrote it; empty when local
	// Path lists the sites that have applied this Txn or are applying it,
	// origin first (loopguard maintains it; empty without a loop guard).
	Path []string
	// CommitTime is the source commit time. A binlog stamps whole
	// seconds; the MySQL source dates a Txn within its binlog second by
	// when it arrived (see source/mysql), so lag reads below a second.
	CommitTime time.Time
	Kind       Kind
	Changes    []Change
	DDL        *DDL // set for KindDDL
	// Heartbeat is set when the Txn carries a source heartbeat row
	// (hamal.heartbeat, written by Hamal on the source): the UTC time it
	// was written. Such a row is never data; the engine uses it for lag.
	Heartbeat time.Time
	// Partial is set on every chunk of a huge source transaction but the
	// last: sources stream such a transaction as several Txns (guarantee
	// 4), in order, sharing Origin and Path. A Partial Txn's Pos is the
	// position *before* the whole transaction, so a checkpoint taken at it
	// resumes at the transaction's start and replays it whole (the sinks
	// are replay-safe); only the last chunk carries the position after it.
	Partial bool

	keys     []uint64
	keysDone bool
	size     int
}

// Change is one row change (MySQL, Mongo) or one command (Redis).
type Change struct {
	Op        Op
	Namespace string // "db.table", Redis db number, Mongo "db.coll"
	// Table describes the columns of Before and After. It is shared between
	// changes and must not be modified once a Change refers to it.
	Table  *Table
	Before []any // row image before the change (update, delete)
	After  []any // row image after the change (insert, update)
	Args   [][]byte
	// Keys lists conflict keys for changes without a Table (Redis keys,
	// Mongo _id); they are hashed with Namespace.
	Keys [][]byte
}

// Table describes a source table as the change saw it.
type Table struct {
	Schema  string
	Name    string
	Columns []Column
	// PrimaryKey holds column indexes of the primary key, in key order.
	PrimaryKey []int
	// UniqueKeys holds the other unique keys (not the primary key).
	UniqueKeys []UniqueKey
	// UniqueUnknown is set when the source cannot tell the table's other
	// unique keys (a Debezium, Canal or Maxwell message names only the
	// primary key): every change of the table then conflicts with every
	// other, so they apply in source order, as a unique value moved
	// between rows needs.
	UniqueUnknown bool
}

// Column describes one column of a Table.
type Column struct {
	Name     string
	Type     byte // MySQL binlog column type code (mysql.MYSQL_TYPE_*)
	Unsigned bool
	Binary   bool // binary charset: BINARY, VARBINARY, BLOB
	Nullable bool
	// Meta is the binlog's column metadata (TableMapEvent.ColumnMeta):
	// precision<<8|scale of a DECIMAL, the fractional digits of a TIME,
	// DATETIME or TIMESTAMP, bytes<<8|bits%8 of a BIT, the maximum byte
	// length of a VARCHAR; 0 when the source has none.
	Meta uint16
	// Members are the member names of an ENUM or SET column, in
	// definition order, when the binlog carries them
	// (binlog_row_metadata=FULL); nil otherwise.
	Members []string
}

// UniqueKey is a named unique index over column indexes.
type UniqueKey struct {
	Name    string
	Columns []int
}

// Namespace returns "schema.table".
func (t *Table) Namespace() string { return t.Schema + "." + t.Name }

// RowKey returns the columns that identify a row: the primary key, or else
// the first unique key whose columns are all NOT NULL. ok is false when the
// table has neither.
func (t *Table) RowKey() (cols []int, ok bool) {
	if len(t.PrimaryKey) > 0 {
		return t.PrimaryKey, true
	}
	for _, uk := range t.UniqueKeys {
		notNull := true
		for _, c := range uk.Columns {
			if c < 0 || c >= len(t.Columns) || t.Columns[c].Nullable {
				notNull = false
				break
			}
		}
		if notNull {
			return uk.Columns, true
		}
	}
	return nil, false
}
