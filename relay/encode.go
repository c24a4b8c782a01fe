package relay

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// encoder encodes Txns of one segment; it remembers which tables the segment
// already defines.
type encoder struct {
	tables map[*event.Table]uint64
	// added lists the tables defined by the record being encoded: if that
	// record is not written after all, rollback forgets them.
	added []*event.Table
}

// commit keeps the table definitions of the last encoded record.
func (e *encoder) commit() { e.added = e.added[:0] }

// rollback forgets the definitions of a record that was not written.
func (e *encoder) rollback() {
	for _, t := range e.added {
		delete(e.tables, t)
	}
	e.added = e.added[:0]
}

func newEncoder() *encoder { return &encoder{tables: map[*event.Table]uint64{}} }

// UnsupportedValueError names a row value the relay cannot store.
type UnsupportedValueError struct {
	Namespace string
	Type      string
}

func (e *UnsupportedValueError) Error() string {
	return fmt.Sprintf("relay: cannot store a value of Go type %s (in %s); this source engine emits a type the relay codec does not know: add it to relay/codec.go", e.Type, e.Namespace)
}

// appendTxn appends rseq and the encoding of t to b.
func (e *encoder) appendTxn(b []byte, rseq uint64, t *event.Txn) ([]byte, error) {
	b = binary.AppendUvarint(b, rseq)
	if t.Seq != 0 {
		b = append(b, txnSeq)
		b = binary.AppendUvarint(b, t.Seq)
	}
	if t.Pos != nil {
		b = append(b, txnPos)
		b = appendBytes(b, t.Pos)
	}
	if t.Origin != "" {
		b = append(b, txnOrigin)
		b = appendString(b, t.Origin)
	}
	if t.Path != nil {
		b = append(b, txnPath)
		b = binary.AppendUvarint(b, uint64(len(t.Path))+1)
		for _, s := range t.Path {
			b = appendString(b, s)
		}
	}
	if !t.CommitTime.IsZero() {
		b = append(b, txnCommitTime)
		b = appendTime(b, t.CommitTime)
	}
	if t.Kind != 0 {
		b = append(b, txnKind, byte(t.Kind))
	}
	if t.Changes != nil {
		b = append(b, txnChanges)
		b = binary.AppendUvarint(b, uint64(len(t.Changes))+1)
		for i := range t.Changes {
			var err error
			if b, err = e.appendChange(b, &t.Changes[i]); err != nil {
				return b, err
			}
		}
	}
	if t.DDL != nil {
		b = append(b, txnDDL)
		b = appendString(b, t.DDL.Schema)
		b = appendString(b, t.DDL.Statement)
		if t.DDL.SQLMode != "" {
			b = append(b, txnDDLSQLMode)
			b = appendString(b, t.DDL.SQLMode)
		}
	}
	if !t.Heartbeat.IsZero() {
		b = append(b, txnHeartbeat)
		b = appendTime(b, t.Heartbeat)
	}
	if t.Partial {
		b = append(b, txnPartial)
	}
	return append(b, txnEnd), nil
}

func (e *encoder) appendChange(b []byte, c *event.Change) ([]byte, error) {
	if c.Op != 0 {
		b = append(b, chgOp, byte(c.Op))
	}
	if c.Namespace != "" {
		b = append(b, chgNamespace)
		b = appendString(b, c.Namespace)
	}
	if c.Table != nil {
		if id, ok := e.tables[c.Table]; ok {
			b = append(b, chgTableRef)
			b = binary.AppendUvarint(b, id)
		} else {
			id = uint64(len(e.tables)) + 1
			e.tables[c.Table] = id
			e.added = append(e.added, c.Table)
			b = append(b, chgTableDef)
			b = binary.AppendUvarint(b, id)
			b = appendTable(b, c.Table)
		}
	}
	var err error
	if c.Before != nil {
		b = append(b, chgBefore)
		if b, err = appendImage(b, c.Before, c.Namespace); err != nil {
			return b, err
		}
	}
	if c.After != nil {
		b = append(b, chgAfter)
		if b, err = appendImage(b, c.After, c.Namespace); err != nil {
			return b, err
		}
	}
	if c.Args != nil {
		b = append(b, chgArgs)
		b = appendByteSlices(b, c.Args)
	}
	if c.Keys != nil {
		b = append(b, chgKeys)
		b = appendByteSlices(b, c.Keys)
	}
	return append(b, chgEnd), nil
}

func appendTable(b []byte, t *event.Table) []byte {
	b = appendString(b, t.Schema)
	b = appendString(b, t.Name)
	b = binary.AppendUvarint(b, uint64(len(t.Columns))+boolCount(t.Columns != nil))
	for _, c := range t.Columns {
		b = appendString(b, c.Name)
		var flags byte
		if c.Unsigned {
			flags |= 1
		}
		if c.Binary {
			flags |= 2
		}
		if c.Nullable {
			flags |= 4
		}
		if c.Meta != 0 {
			flags |= 8
		}
		if c.Members != nil {
			flags |= 16
		}
		b = append(b, c.Type, flags)
		if c.Meta != 0 {
			b = binary.AppendUvarint(b, uint64(c.Meta))
		}
		if c.Members != nil {
			b = binary.AppendUvarint(b, uint64(len(c.Members)))
			for _, m := range c.Members {
				b = appendString(b, m)
			}
		}
	}
	b = appendInts(b, t.PrimaryKey)
	b = binary.AppendUvarint(b, uint64(len(t.UniqueKeys))+boolCount(t.UniqueKeys != nil))
	for _, uk := range t.UniqueKeys {
		b = appendString(b, uk.Name)
		b = appendInts(b, uk.Columns)
	}
	var flags byte // format 2
	if t.UniqueUnknown {
		flags |= 1
	}
	return append(b, flags)
}

// boolCount is 1 for a non-nil slice: counts are written +1, 0 means nil.
func boolCount(nonNil bool) uint64 {
	if nonNil {
		return 1
	}
	return 0
}

func appendInts(b []byte, xs []int) []byte {
	b = binary.AppendUvarint(b, uint64(len(xs))+boolCount(xs != nil))
	for _, x := range xs {
		b = binary.AppendVarint(b, int64(x))
	}
	return b
}

func appendImage(b []byte, image []any, ns string) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(image))+1)
	for _, v := range image {
		var err error
		if b, err = appendValue(b, v, ns); err != nil {
			return b, err
		}
	}
	return b, nil
}

func appendValue(b []byte, v any, ns string) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, valNil), nil
	case int8:
		return binary.AppendVarint(append(b, valInt8), int64(x)), nil
	case int16:
		return binary.AppendVarint(append(b, valInt16), int64(x)), nil
	case int32:
		return binary.AppendVarint(append(b, valInt32), int64(x)), nil
	case int64:
		return binary.AppendVarint(append(b, valInt64), x), nil
	case int:
		return binary.AppendVarint(append(b, valInt), int64(x)), nil
	case uint8:
		return append(b, valUint8, x), nil
	case uint16:
		return binary.AppendUvarint(append(b, valUint16), uint64(x)), nil
	case uint32:
		return binary.AppendUvarint(append(b, valUint32), uint64(x)), nil
	case uint64:
		return binary.AppendUvarint(append(b, valUint64), x), nil
	case uint:
		return binary.AppendUvarint(append(b, valUint), uint64(x)), nil
	case float32:
		return binary.LittleEndian.AppendUint32(append(b, valFloat32), math.Float32bits(x)), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, valFloat64), math.Float64bits(x)), nil
	case string:
		return appendString(append(b, valString), x), nil
	case []byte:
		if x == nil {
			return append(b, valBytesNil), nil
		}
		return appendBytes(append(b, valBytes), x), nil
	case bool:
		if x {
			return append(b, valTrue), nil
		}
		return append(b, valFalse), nil
	case time.Time:
		return appendTime(append(b, valTime), x), nil
	}
	return b, &UnsupportedValueError{Namespace: ns, Type: fmt.Sprintf("%T", v)}
}

func appendByteSlices(b []byte, xs [][]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(xs))+1)
	for _, x := range xs {
		if x == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(x))+1)
		b = append(b, x...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, x []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(x)))
	return append(b, x...)
}

// appendTime keeps the instant and whether it was UTC; other zones come
// back as the local zone (same instant). Hamal's sources emit UTC or local.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, timeZero)
	}
	flag := timeLocal
	if t.Location() == time.UTC {
		flag = timeUTC
	}
	b = append(b, flag)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}
