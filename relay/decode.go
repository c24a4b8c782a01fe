package relay

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/hamal-replication/hamal/event"
)

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
	// v1 decodes records of a format 1 segment: no table flags byte.
	v1 bool
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
		case txnDDLSQLMode:
			if t.DDL == nil {
				r.fail() // flags without a statement
				break
			}
			t.DDL.SQLMode = r.string()
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
			// A row image holds the values of its table's key columns,
			// which the key functions and the sinks index.
			if t := c.Table; t != nil && !(coversKeys(t, c.Before) && coversKeys(t, c.After)) {
				r.fail()
			}
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
			t := decodeTable(r, d.v1)
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

func decodeTable(r *reader, v1 bool) *event.Table {
	t := &event.Table{Schema: r.string(), Name: r.string()}
	if n, isNil := r.count(); !isNil {
		t.Columns = make([]event.Column, n)
		for i := range t.Columns {
			c := &t.Columns[i]
			c.Name = r.string()
			c.Type = r.byte()
			flags := r.byte()
			c.Unsigned, c.Binary, c.Nullable = flags&1 != 0, flags&2 != 0, flags&4 != 0
			if flags&8 != 0 {
				m := r.uvarint()
				if m > 0xffff {
					r.fail()
				}
				c.Meta = uint16(m)
			}
			if flags&16 != 0 {
				n := r.uvarint()
				if n > uint64(len(r.b)-r.off) {
					r.fail() // each member takes at least one byte
					n = 0
				}
				c.Members = make([]string, n)
				for j := range c.Members {
					c.Members[j] = r.string()
				}
			}
		}
	}
	t.PrimaryKey = decodeInts(r)
	if n, isNil := r.count(); !isNil {
		t.UniqueKeys = make([]event.UniqueKey, n)
		for i := range t.UniqueKeys {
			t.UniqueKeys[i] = event.UniqueKey{Name: r.string(), Columns: decodeInts(r)}
		}
	}
	if !v1 {
		flags := r.byte()
		if flags&^1 != 0 {
			r.fail()
		}
		t.UniqueUnknown = flags&1 != 0
	}
	// Key columns index the table's columns (and so the row images):
	// an index outside them is corrupt, whoever wrote the record.
	validColumns := func(cols []int) {
		for _, c := range cols {
			if c < 0 || c >= len(t.Columns) {
				r.fail()
				return
			}
		}
	}
	validColumns(t.PrimaryKey)
	for _, uk := range t.UniqueKeys {
		validColumns(uk.Columns)
	}
	return t
}

// coversKeys reports whether image, unless empty, holds every key column
// of t.
func coversKeys(t *event.Table, image []any) bool {
	if len(image) == 0 {
		return true
	}
	for _, c := range t.PrimaryKey {
		if c >= len(image) {
			return false
		}
	}
	for _, uk := range t.UniqueKeys {
		for _, c := range uk.Columns {
			if c >= len(image) {
				return false
			}
		}
	}
	return true
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
