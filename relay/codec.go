package relay

import (
	"errors"
)

// The record payload is a tagged field list so that a new Txn or Change
// field is one case in encode and one in decode, and a segment written
// before the field existed still decodes (the field stays zero). Tag 0 ends
// a list.
//
// Slices are written with count+1 so that nil and empty stay distinct
// (event.Txn.ConflictKeys treats a nil image as absent). Tables are written
// once per segment, the first time a change refers to them, and then by id.

// Txn field tags.
const (
	txnEnd byte = iota
	txnSeq
	txnPos
	txnOrigin
	txnPath
	txnCommitTime
	txnKind
	txnChanges
	txnDDL
	txnHeartbeat
	txnPartial
	txnDDLSQLMode // the DDL's sql_mode flags (after txnDDL)
)

// Change field tags.
const (
	chgEnd byte = iota
	chgOp
	chgNamespace
	chgTableRef // uvarint id of a table defined earlier in the segment
	chgTableDef // uvarint id, then the table: defines and refers to it
	chgBefore
	chgAfter
	chgArgs
	chgKeys
)

// Value type tags: the exact Go type is kept, since sinks switch on it.
const (
	valNil byte = iota
	valInt8
	valInt16
	valInt32
	valInt64
	valInt
	valUint8
	valUint16
	valUint32
	valUint64
	valUint
	valFloat32
	valFloat64
	valString
	valBytes
	valBytesNil // a typed nil []byte
	valFalse
	valTrue
	valTime
)

// Time location flags.
const (
	timeZero byte = iota
	timeUTC
	timeLocal
)

// errCorrupt marks a payload that does not decode; a record that passed its
// checksum and still does not decode is a bug or a foreign file.
var errCorrupt = errors.New("relay: corrupt record")
