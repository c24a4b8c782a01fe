package event

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/cespare/xxhash/v2"
)

// IsBarrier reports whether the Txn must wait for everything before it and
// hold back everything after it: DDL, explicit barriers, and DML touching a
// table whose rows cannot be identified by a key.
func (t *Txn) IsBarrier() bool {
	switch t.Kind {
	case KindDDL, KindBarrier:
		return true
	case KindDML:
		t.computeKeys()
		return t.keys == nil && len(t.Changes) > 0
	}
	return false
}

// ConflictKeys returns the Txn's conflict keys, computed once and cached.
// It returns nil for a barrier and for a Txn without changes. It is not safe
// to call concurrently with itself before the first call returns; the engine
// calls it once on the reader goroutine.
func (t *Txn) ConflictKeys() []uint64 {
	t.computeKeys()
	return t.keys
}

func (t *Txn) computeKeys() {
	if t.keysDone {
		return
	}
	t.keysDone = true
	if t.Kind != KindDML {
		return
	}
	var buf []byte
	seen := make(map[uint64]struct{}, 4*len(t.Changes))
	keys := make([]uint64, 0, 4*len(t.Changes))
	add := func(h uint64) {
		if _, dup := seen[h]; !dup {
			seen[h] = struct{}{}
			keys = append(keys, h)
		}
	}
	for i := range t.Changes {
		c := &t.Changes[i]
		if c.Table == nil {
			if len(c.Keys) == 0 {
				return // keys unknown: barrier
			}
			for _, k := range c.Keys {
				buf = append(buf[:0], c.Namespace...)
				buf = append(buf, 0)
				buf = append(buf, k...)
				add(xxhash.Sum64(buf))
			}
			continue
		}
		if _, ok := c.Table.RowKey(); !ok {
			return // no PK nor NOT NULL UK: barrier
		}
		for _, image := range [2][]any{c.Before, c.After} {
			if image == nil {
				continue
			}
			if h, ok := keyHash(&buf, c.Table, "PRIMARY", c.Table.PrimaryKey, image); ok {
				add(h)
			}
			for _, uk := range c.Table.UniqueKeys {
				if h, ok := keyHash(&buf, c.Table, uk.Name, uk.Columns, image); ok {
					add(h)
				}
			}
		}
		if c.Table.UniqueUnknown {
			add(xxhash.Sum64String(c.Table.Schema + "." + c.Table.Name + "\x00unique keys unknown"))
		}
	}
	t.keys = keys
}

// keyHash hashes (namespace, key name, values). ok is false when the key
// has no columns or one of its values is NULL (NULLs never collide in a
// unique index).
func keyHash(buf *[]byte, t *Table, name string, cols []int, image []any) (uint64, bool) {
	if len(cols) == 0 {
		return 0, false
	}
	b := append((*buf)[:0], t.Schema...)
	b = append(b, '.')
	b = append(b, t.Name...)
	b = append(b, 0)
	b = append(b, name...)
	b = append(b, 0)
	for _, ci := range cols {
		if ci < 0 || ci >= len(image) || image[ci] == nil {
			*buf = b
			return 0, false
		}
		b = AppendKeyValue(b, image[ci])
	}
	*buf = b
	return xxhash.Sum64(b), true
}

// AppendKeyValue appends a canonical encoding of a key value to b. Equal
// values of one column always encode alike. Text is folded (lower case,
// trailing spaces dropped) so that values a case-insensitive PAD SPACE
// collation treats as equal also encode alike; folding can only add a false
// dependency, never hide a real one.
func AppendKeyValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 'n')
	case int8:
		return appendInt(b, int64(x))
	case int16:
		return appendInt(b, int64(x))
	case int32:
		return appendInt(b, int64(x))
	case int64:
		return appendInt(b, x)
	case int:
		return appendInt(b, int64(x))
	case uint8:
		return appendUint(b, uint64(x))
	case uint16:
		return appendUint(b, uint64(x))
	case uint32:
		return appendUint(b, uint64(x))
	case uint64:
		return appendUint(b, x)
	case uint:
		return appendUint(b, uint64(x))
	case float32:
		return binary.BigEndian.AppendUint64(append(b, 'f'), math.Float64bits(float64(x)))
	case float64:
		return binary.BigEndian.AppendUint64(append(b, 'f'), math.Float64bits(x))
	case string:
		return appendText(b, x)
	case []byte:
		return appendText(b, string(x))
	case bool:
		if x {
			return appendInt(b, 1)
		}
		return appendInt(b, 0)
	}
	// Other types (e.g. decoded JSON) fall back to their Go syntax; stable
	// for equal values, which is all a conflict key needs.
	return appendText(b, fmt.Sprintf("%#v", v))
}

func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(b, uint64(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 'i'), uint64(v))
}

func appendUint(b []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 'u'), v)
}

func appendText(b []byte, s string) []byte {
	s = strings.TrimRight(s, " ")
	b = append(b, 's')
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	for _, r := range s {
		if r < unicode.MaxASCII {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b = append(b, byte(r))
			continue
		}
		b = strconv.AppendQuoteRune(b, unicode.ToLower(r))
	}
	return b
}

// SizeBytes is an estimate of the heap memory the Txn holds, for the
// DAG's byte window: the Txn and its Changes (with the slack an appended
// slice keeps), each image's interface slots and the values they box,
// and the conflict keys once computed (the DAG asks after ConflictKeys).
// TestSizeBytesCoversHeap holds it to the heap a Txn really takes.
// Computed once and cached.
func (t *Txn) SizeBytes() int {
	if t.size > 0 {
		return t.size
	}
	const (
		txnBytes    = 208 + 48 // the struct, plus the position's bytes header
		changeBytes = 128      // unsafe.Sizeof(Change{})
	)
	n := txnBytes + len(t.Pos) + 8*cap(t.keys)
	if t.DDL != nil {
		n += len(t.DDL.Statement) + len(t.DDL.Schema)
	}
	n += changeBytes * cap(t.Changes)
	for i := range t.Changes {
		c := &t.Changes[i]
		n += imageSize(c.Before) + imageSize(c.After)
		for _, a := range c.Args {
			n += 24 + len(a)
		}
		for _, k := range c.Keys {
			n += 24 + len(k)
		}
	}
	t.size = n
	return n
}

// imageSize is the heap an image takes: its slice of interfaces and the
// value each one boxes (a string or slice header and its bytes, or a
// number's word).
func imageSize(image []any) int {
	if image == nil {
		return 0
	}
	n := 16 * cap(image)
	for _, v := range image {
		switch x := v.(type) {
		case nil:
		case string:
			n += 16 + len(x)
		case []byte:
			n += 24 + len(x)
		default:
			n += 8
		}
	}
	return n
}

// Rows returns the number of row changes in the Txn.
func (t *Txn) Rows() int { return len(t.Changes) }
