package mysql

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// literalKind says how a string or []byte value of one column is written as
// a SQL literal. It is decided once per column from the target's
// information_schema (DATA_TYPE, CHARACTER_SET_NAME), so the bytes the
// source stored arrive byte-exactly whatever the column's charset.
type literalKind uint8

const (
	// kindPlain: numeric and other columns; strings are quoted and escaped.
	kindPlain literalKind = iota + 1
	// kindUTF8: utf8mb4 text (also MariaDB JSON, a utf8mb4 LONGTEXT); the
	// connection runs SET NAMES utf8mb4, so a quoted, escaped literal
	// carries the bytes unchanged.
	kindUTF8
	// kindCharsetHex: text in another charset (latin1, utf8mb3, sjis…):
	// _charset X'hex' names the bytes' charset, so the server neither
	// converts them nor misreads a multi-byte sequence holding 0x5c.
	kindCharsetHex
	// kindBinary: BINARY, VARBINARY, BLOB, geometry: X'hex'.
	kindBinary
	// kindDecimal: DECIMAL strings are written unquoted (an exact DECIMAL
	// literal, also in comparisons) when they are plain numbers.
	kindDecimal
	// kindTemporal: DATE, TIME, DATETIME, TIMESTAMP strings, quoted.
	kindTemporal
	// kindBits: BIT values and SET bitmasks arrive as int64; written as an
	// unsigned decimal so a BIT(64) or a 64-member SET with the top bit set
	// keeps its bits.
	kindBits
)

// columnPlan is what the sink knows about one source column on the target.
type columnPlan struct {
	quotedName string // `name`
	kind       literalKind
	charset    string // for kindCharsetHex
	generated  bool   // generated on the target: never written
	// numbered: an ENUM or SET column, whose binlog value is an integer
	// (the ENUM's index, the SET's bitmask) while the column reads as its
	// label(s): a comparison with an integer reads the column as col+0.
	numbered bool
	// padded: a BINARY(n) column. The binlog drops its trailing 0x00 pad
	// bytes and the target pads them back, so a comparison trims them on
	// both sides.
	padded bool
}

// escapeChar maps a byte to the character that follows the backslash in
// its escaped form, or 0 when the byte goes into a literal unchanged.
var escapeChar = [256]byte{
	0:    '0',
	'\n': 'n',
	'\r': 'r',
	'\\': '\\',
	'\'': '\'',
	'"':  '"',
	0x1a: 'Z',
}

// appendQuoted appends s as a single-quoted literal, escaping \0 ' " \ \n
// \r and \x1a. Correct while the session's sql_mode lacks
// NO_BACKSLASH_ESCAPES, which the sink's session setup guarantees.
func appendQuoted[T string | []byte](b []byte, s T) []byte {
	b = append(b, '\'')
	start := 0
	for i := 0; i < len(s); i++ {
		if e := escapeChar[s[i]]; e != 0 {
			b = append(b, s[start:i]...)
			b = append(b, '\\', e)
			start = i + 1
		}
	}
	b = append(b, s[start:]...)
	return append(b, '\'')
}

func appendHex[T string | []byte](b []byte, s T) []byte {
	b = append(b, 'X', '\'')
	b = hex.AppendEncode(b, []byte(s))
	return append(b, '\'')
}

// isPlainDecimal reports whether s is [-]digits[.digits], safe to write
// unquoted.
func isPlainDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// appendString renders a string-typed value for column cp.
func appendString[T string | []byte](b []byte, s T, cp *columnPlan) []byte {
	switch cp.kind {
	case kindBinary:
		return appendHex(b, s)
	case kindCharsetHex:
		b = append(b, '_')
		b = append(b, cp.charset...)
		b = append(b, ' ')
		return appendHex(b, s)
	case kindDecimal:
		if isPlainDecimal(string(s)) {
			return append(b, s...)
		}
	}
	return appendQuoted(b, s)
}

// appendLiteral appends v, a row value as go-mysql decodes it, as a SQL
// literal for column cp. where is set when the literal is compared with the
// column (row keys, full-row match of keyless tables).
func appendLiteral(b []byte, v any, cp *columnPlan, where bool) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "NULL"...), nil
	case string:
		return appendString(b, x, cp), nil
	case []byte:
		return appendString(b, x, cp), nil
	case int64:
		if cp.kind == kindBits {
			return strconv.AppendUint(b, uint64(x), 10), nil
		}
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case float32:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return b, fmt.Errorf("column %s: %v cannot be stored in MySQL", cp.quotedName, x)
		}
		// The shortest digits that round-trip as float32 ('g', -1, 32) are
		// not enough: the server parses them as a double first, and for
		// FLT_MAX ("3.4028235e+38") that double is out of FLOAT's range.
		// The digits of the exact double value of the float32 parse back to
		// that double exactly, which converts to the same float32; they are
		// also what a comparison with a FLOAT column (done in double) needs.
		return strconv.AppendFloat(b, f, 'g', -1, 64), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return b, fmt.Errorf("column %s: %v cannot be stored in MySQL", cp.quotedName, x)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64), nil
	case bool:
		if x {
			return append(b, '1'), nil
		}
		return append(b, '0'), nil
	case json.RawMessage:
		return appendString(b, []byte(x), cp), nil
	}
	return b, fmt.Errorf("column %s: unsupported value type %T", cp.quotedName, v)
}

// appendIdent appends a backquoted identifier.
func appendIdent(b []byte, name string) []byte {
	b = append(b, '`')
	for i := 0; i < len(name); i++ {
		if name[i] == '`' {
			b = append(b, '`')
		}
		b = append(b, name[i])
	}
	return append(b, '`')
}

func quoteIdent(name string) string { return string(appendIdent(nil, name)) }

// quoteString returns s as a quoted literal, for the few statements built
// outside the hot path.
func quoteString(s string) string { return string(appendQuoted(nil, s)) }
