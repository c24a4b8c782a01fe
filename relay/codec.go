package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/hamal-replication/hamal/event"
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
		b = append(b, c.Type, flags)
	}
	b = appendInts(b, t.PrimaryKey)
	b = binary.AppendUvarint(b, uint64(len(t.UniqueKeys))+boolCount(t.UniqueKeys != nil))
	for _, uk := range t.UniqueKeys {
		b = appendString(b, uk.Name)
		b = appendInts(b, uk.Columns)
	}
	return b
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

// decoder decodes the records of one segment, in order: table definitions
// seen earlier in the segment are remembered by id.
//
// Decoding allocates little per record, since the applier decodes every
// Txn the source wrote: string and []byte row values are slices of the
// record's payload (which belongs to that record alone, see recordReader),
// a Txn and its changes are one allocation when it has one change, and the
// two images of an update share one []any. Namespaces, origins and paths
// repeat from record to record: they are interned, so they cost nothing per
// record and never keep a payload alive.
type decoder struct {
	tables map[uint64]*event.Table
	// intern, when set, maps a table's encoding to one shared *Table across
	// segments, so that sinks caching per *Table (statement plans) see the
	// same pointer for the same table description.
	intern *tableIntern
	names  map[string]string
}

func newDecoder(intern *tableIntern) *decoder {
	return &decoder{tables: map[uint64]*event.Table{}, intern: intern}
}

// maxNames bounds the interned names of one decoder (one segment); past it
// names are copied per record.
const maxNames = 4096

// name returns an interned copy of a short string field.
func (d *decoder) name(r *reader) string {
	raw := r.raw()
	if r.err != nil {
		return ""
	}
	if s, ok := d.names[string(raw)]; ok { // no allocation for the lookup
		return s
	}
	s := string(raw)
	if d.names == nil {
		d.names = map[string]string{}
	}
	if len(d.names) < maxNames {
		d.names[s] = s
	}
	return s
}

// tableIntern shares decoded table descriptions between segments. It is
// bounded: past maxInterned entries it starts over (a sink then sees a new
// pointer for a table, which costs it one plan, never correctness).
type tableIntern struct{ m map[string]*event.Table }

const maxInterned = 4096

func (ti *tableIntern) get(enc []byte, t *event.Table) *event.Table {
	if ti == nil {
		return t
	}
	if old, ok := ti.m[string(enc)]; ok {
		return old
	}
	if ti.m == nil || len(ti.m) >= maxInterned {
		ti.m = map[string]*event.Table{}
	}
	ti.m[string(enc)] = t
	return t
}

// reader is a bounds-checked cursor over one payload. Every length is
// checked against what is left, so garbage never allocates more than the
// payload's size nor panics.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w at byte %d", errCorrupt, r.off)
	}
}

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.off += n
	return v
}

// count reads a count+1 length prefix; nil is true for 0. Each element
// takes at least one byte, so a count beyond what is left is corrupt.
func (r *reader) count() (n int, isNil bool) {
	v := r.uvarint()
	if r.err != nil {
		return 0, true
	}
	if v == 0 {
		return 0, true
	}
	if v-1 > uint64(len(r.b)-r.off) {
		r.fail()
		return 0, true
	}
	return int(v - 1), false
}

func (r *reader) raw() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail()
		return nil
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}

// string copies: for fields that outlive the record (table descriptions,
// DDL).
func (r *reader) string() string { return string(r.raw()) }

// alias returns a string that shares the payload's bytes, like bytes does:
// the payload is never written after it was read.
func (r *reader) alias() string {
	s := r.raw()
	if len(s) == 0 {
		return ""
	}
	return unsafe.String(&s[0], len(s))
}

// bytes returns a slice of the payload (capped, so an append never writes
// into the payload): a payload buffer belongs to one record and lives as long
// as its Txn.
func (r *reader) bytes() []byte {
	s := r.raw()
	if r.err != nil {
		return nil
	}
	return s[:len(s):len(s)]
}

func (r *reader) fixed(n int) []byte {
	if r.err != nil || len(r.b)-r.off < n {
		r.fail()
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) time() time.Time {
	switch r.byte() {
	case timeZero:
		return time.Time{}
	case timeUTC:
		s, ns := r.varint(), r.uvarint()
		if ns >= 1e9 {
			r.fail()
		}
		return time.Unix(s, int64(ns)).UTC()
	case timeLocal:
		s, ns := r.varint(), r.uvarint()
		if ns >= 1e9 {
			r.fail()
		}
		return time.Unix(s, int64(ns))
	}
	r.fail()
	return time.Time{}
}

// txnWith1 is a Txn and its only change in one allocation: most Txns of
// a row-based source carry one change.
type txnWith1 struct {
	txn event.Txn
	chg [1]event.Change
}

// decodeTxn decodes one record payload. The Txn refers to payload (row
// values): the caller hands over a buffer nothing else writes.
func (d *decoder) decodeTxn(payload []byte) (rseq uint64, txn *event.Txn, err error) {
	r := &reader{b: payload}
	rseq = r.uvarint()
	var t event.Txn
	var box *txnWith1
	for r.err == nil {
		switch tag := r.byte(); tag {
		case txnEnd:
			if r.err == nil && r.off != len(r.b) {
				r.fail()
			}
			if r.err != nil {
				return 0, nil, r.err
			}
			if box != nil {
				box.txn = t
				return rseq, &box.txn, nil
			}
			txn = new(event.Txn)
			*txn = t
			return rseq, txn, nil
		case txnSeq:
			t.Seq = r.uvarint()
		case txnPos:
			t.Pos = event.Position(r.bytes())
		case txnOrigin:
			t.Origin = d.name(r)
		case txnPath:
			n, isNil := r.count()
			if !isNil {
				t.Path = make([]string, n)
				for i := range t.Path {
					t.Path[i] = d.name(r)
				}
			}
		case txnCommitTime:
			t.CommitTime = r.time()
		case txnKind:
			t.Kind = event.Kind(r.byte())
		case txnChanges:
			n, isNil := r.count()
			if isNil || t.Changes != nil {
				if t.Changes != nil {
					r.fail() // a second change list
				}
				break
			}
			if n == 1 {
				box = &txnWith1{}
				t.Changes = box.chg[:]
			} else {
				t.Changes = make([]event.Change, n)
			}
			for i := range t.Changes {
				d.decodeChange(r, &t.Changes[i])
			}
		case txnDDL:
			t.DDL = &event.DDL{Schema: r.string(), Statement: r.string()}
		case txnHeartbeat:
			t.Heartbeat = r.time()
		case txnPartial:
			t.Partial = true
		default:
			r.fail()
		}
	}
	return 0, nil, r.err
}

func (d *decoder) decodeChange(r *reader, c *event.Change) {
	// spare is the rest of the Before image's allocation, for After.
	var spare []any
	for r.err == nil {
		switch tag := r.byte(); tag {
		case chgEnd:
			return
		case chgOp:
			c.Op = event.Op(r.byte())
		case chgNamespace:
			c.Namespace = d.name(r)
		case chgTableRef:
			t, ok := d.tables[r.uvarint()]
			if !ok {
				r.fail()
				return
			}
			c.Table = t
		case chgTableDef:
			id := r.uvarint()
			start := r.off
			t := decodeTable(r)
			if r.err != nil {
				return
			}
			t = d.intern.get(r.b[start:r.off], t)
			d.tables[id] = t
			c.Table = t
		case chgBefore:
			// An update's After is as long as its Before, as a rule: one
			// allocation for both.
			c.Before, spare = decodeImage(r, nil, c.Op == event.OpUpdate)
		case chgAfter:
			c.After, _ = decodeImage(r, spare, false)
		case chgArgs:
			c.Args = decodeByteSlices(r)
		case chgKeys:
			c.Keys = decodeByteSlices(r)
		default:
			r.fail()
		}
	}
}

func decodeTable(r *reader) *event.Table {
	t := &event.Table{Schema: r.string(), Name: r.string()}
	if n, isNil := r.count(); !isNil {
		t.Columns = make([]event.Column, n)
		for i := range t.Columns {
			c := &t.Columns[i]
			c.Name = r.string()
			c.Type = r.byte()
			flags := r.byte()
			c.Unsigned, c.Binary, c.Nullable = flags&1 != 0, flags&2 != 0, flags&4 != 0
		}
	}
	t.PrimaryKey = decodeInts(r)
	if n, isNil := r.count(); !isNil {
		t.UniqueKeys = make([]event.UniqueKey, n)
		for i := range t.UniqueKeys {
			t.UniqueKeys[i] = event.UniqueKey{Name: r.string(), Columns: decodeInts(r)}
		}
	}
	return t
}

func decodeInts(r *reader) []int {
	n, isNil := r.count()
	if isNil {
		return nil
	}
	xs := make([]int, n)
	for i := range xs {
		xs[i] = int(r.varint())
	}
	return xs
}

// decodeImage decodes a row image into spare when it fits, else into a
// new slice (twice as long when double: the rest is returned as spare).
// The image is capped, so an append to it never writes into the other.
func decodeImage(r *reader, spare []any, double bool) (image, rest []any) {
	n, isNil := r.count()
	if isNil {
		return nil, spare
	}
	if cap(spare) < n {
		size := n
		if double {
			size = 2 * n
		}
		spare = make([]any, size)
	}
	image, rest = spare[:n:n], spare[n:]
	for i := range image {
		image[i] = decodeValue(r)
	}
	return image, rest
}

func decodeValue(r *reader) any {
	switch tag := r.byte(); tag {
	case valNil:
		return nil
	case valInt8:
		return int8(r.varint())
	case valInt16:
		return int16(r.varint())
	case valInt32:
		return int32(r.varint())
	case valInt64:
		return r.varint()
	case valInt:
		return int(r.varint())
	case valUint8:
		return r.byte()
	case valUint16:
		return uint16(r.uvarint())
	case valUint32:
		return uint32(r.uvarint())
	case valUint64:
		return r.uvarint()
	case valUint:
		return uint(r.uvarint())
	case valFloat32:
		if b := r.fixed(4); b != nil {
			return math.Float32frombits(binary.LittleEndian.Uint32(b))
		}
	case valFloat64:
		if b := r.fixed(8); b != nil {
			return math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
	case valString:
		return r.alias()
	case valBytes:
		return r.bytes()
	case valBytesNil:
		return []byte(nil)
	case valFalse:
		return false
	case valTrue:
		return true
	case valTime:
		return r.time()
	default:
		r.fail()
	}
	return nil
}

func decodeByteSlices(r *reader) [][]byte {
	n, isNil := r.count()
	if isNil {
		return nil
	}
	xs := make([][]byte, n)
	for i := range xs {
		v := r.uvarint()
		if r.err != nil {
			return xs
		}
		if v == 0 {
			continue
		}
		if v-1 > uint64(len(r.b)-r.off) {
			r.fail()
			return xs
		}
		end := r.off + int(v-1)
		xs[i] = r.b[r.off:end:end]
		r.off = end
	}
	return xs
}
