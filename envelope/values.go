package envelope

import (
	"encoding/base64"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// The value helpers of the Debezium, Canal and Maxwell formats. Input
// values are what the MySQL source gives (see source/mysql doc.go): sized
// Go integers, DECIMAL and temporal values as MySQL's text, FLOAT as
// float32, DOUBLE as float64, text and binary as string or []byte, ENUM
// as its 1-based index, SET as its bitmask, BIT as int64; and what the
// Kafka source decodes from Hamal's envelope (int64, uint64, string,
// []byte).

// row is one change as a format writes it.
type row struct {
	table         *event.Table
	op            string // OpCreate, OpUpdate, OpDelete
	before, after []any
	index         int // of the message in its Txn
}

// rows splits the changes of txn as Encode does: an update that moves the
// row key becomes a delete and a create, so each key's messages share a
// partition and keep their order.
func rows(txn *event.Txn) ([]row, error) {
	out := make([]row, 0, len(txn.Changes))
	add := func(c *event.Change, op string, before, after []any) {
		out = append(out, row{table: c.Table, op: op, before: before, after: after, index: len(out)})
	}
	for i := range txn.Changes {
		c := &txn.Changes[i]
		if c.Table == nil {
			return nil, fmt.Errorf("change %d of %s at %s: no table description; the Kafka formats carry row changes with their columns (MySQL sources)", i, c.Namespace, txn.Pos)
		}
		image := c.After
		if image == nil {
			image = c.Before
		}
		if len(image) != len(c.Table.Columns) || (c.Before != nil && len(c.Before) != len(c.Table.Columns)) {
			return nil, fmt.Errorf("change %d of %s at %s: row image has %d values for %d columns", i, c.Namespace, txn.Pos, len(image), len(c.Table.Columns))
		}
		switch c.Op {
		case event.OpInsert:
			add(c, OpCreate, nil, c.After)
		case event.OpDelete:
			add(c, OpDelete, c.Before, nil)
		case event.OpUpdate:
			if keyChanged(c.Table, c.Before, c.After) {
				add(c, OpDelete, c.Before, nil)
				add(c, OpCreate, nil, c.After)
			} else {
				add(c, OpUpdate, c.Before, c.After)
			}
		default:
			return nil, fmt.Errorf("change %d of %s at %s: operation %s cannot be carried in a Kafka message", i, c.Namespace, txn.Pos, c.Op)
		}
	}
	return out, nil
}

// text is a text column's value as UTF-8: the bytes as they are when
// they are UTF-8, else read as latin1 (the binlog carries a column's
// collation, not its bytes' meaning; latin1 is MySQL's other common
// charset and maps every byte).
func text(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

func rawOf(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	}
	return "", false
}

// integer returns an integer value as int64, or as uint64 above the int64
// range.
func integer(v any) (i int64, u uint64, isUint, ok bool) {
	switch x := v.(type) {
	case int64:
		return x, 0, false, true
	case int32:
		return int64(x), 0, false, true
	case int16:
		return int64(x), 0, false, true
	case int8:
		return int64(x), 0, false, true
	case int:
		return int64(x), 0, false, true
	case uint64:
		if x > 1<<63-1 {
			return 0, x, true, true
		}
		return int64(x), 0, false, true
	case uint32:
		return int64(x), 0, false, true
	case uint16:
		return int64(x), 0, false, true
	case uint8:
		return int64(x), 0, false, true
	case uint:
		return int64(x), 0, false, true
	case bool:
		if x {
			return 1, 0, false, true
		}
		return 0, 0, false, true
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return n, 0, false, true
		}
		if n, err := strconv.ParseUint(x, 10, 64); err == nil {
			return 0, n, true, true
		}
	}
	return 0, 0, false, false
}

func appendInteger(b []byte, v any) ([]byte, error) {
	i, u, isUint, ok := integer(v)
	if !ok {
		return nil, fmt.Errorf("value %v (%T) is not an integer", v, v)
	}
	if isUint {
		return strconv.AppendUint(b, u, 10), nil
	}
	return strconv.AppendInt(b, i, 10), nil
}

// enumName is the member an ENUM index names; "" for index 0 (the
// invalid value MySQL stores for a bad member). Without member names
// (binlog_row_metadata not FULL) it is the index.
func enumName(c event.Column, v any) string {
	i, _, _, _ := integer(v)
	if i <= 0 {
		if _, isStr := v.(string); isStr {
			return text(v.(string))
		}
		return ""
	}
	if int(i) <= len(c.Members) {
		return c.Members[i-1]
	}
	return strconv.FormatInt(i, 10)
}

// setNames are the members a SET bitmask holds, in definition order.
func setNames(c event.Column, v any) []string {
	if s, ok := v.(string); ok { // already text
		if s == "" {
			return []string{}
		}
		return strings.Split(text(s), ",")
	}
	i, u, isUint, _ := integer(v)
	mask := uint64(i)
	if isUint {
		mask = u
	}
	names := []string{}
	for bit := 0; bit < 64; bit++ {
		if mask&(1<<bit) == 0 {
			continue
		}
		if bit < len(c.Members) {
			names = append(names, c.Members[bit])
		} else {
			names = append(names, strconv.Itoa(bit+1))
		}
	}
	return names
}

// bitLen is a BIT column's width in bits (64 when unknown).
func bitLen(c event.Column) int {
	n := int(c.Meta>>8)*8 + int(c.Meta&0xff)
	if n == 0 {
		return 64
	}
	return n
}

// fsp is the fractional-second digits of a temporal column.
func fsp(c event.Column, s string) int {
	switch c.Type {
	case gomysql.MYSQL_TYPE_TIME2, gomysql.MYSQL_TYPE_DATETIME2, gomysql.MYSQL_TYPE_TIMESTAMP2:
		if c.Meta > 0 && c.Meta <= 6 {
			return int(c.Meta)
		}
	}
	if dot := strings.LastIndexByte(s, '.'); dot >= 0 {
		return len(s) - dot - 1
	}
	return 0
}

// parseDateTime reads MySQL's "YYYY-MM-DD[ hh:mm:ss[.ffffff]]" as UTC;
// zero is true for a zero date ('0000-00-00…').
func parseDateTime(s string) (t time.Time, zero bool, err error) {
	if strings.HasPrefix(s, "0000-00-00") {
		return time.Time{}, true, nil
	}
	layout := "2006-01-02"
	if len(s) > 10 {
		layout = "2006-01-02 15:04:05.999999"
	}
	t, err = time.ParseInLocation(layout, s, time.UTC)
	return t, false, err
}

// timeMicros reads MySQL's TIME "[-]hhh:mm:ss[.ffffff]" as microseconds.
func timeMicros(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	frac := ""
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		s, frac = s[:dot], s[dot+1:]
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("TIME %q is not hh:mm:ss", s)
	}
	var hms [3]int64
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("TIME %q: %v", s, err)
		}
		hms[i] = n
	}
	us := (hms[0]*3600 + hms[1]*60 + hms[2]) * 1e6
	if frac != "" {
		f := (frac + "000000")[:6]
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("TIME fraction %q: %v", frac, err)
		}
		us += n
	}
	if neg {
		us = -us
	}
	return us, nil
}

// unscaled is a DECIMAL's text as its unscaled value and scale.
func unscaled(s string) (*big.Int, int, error) {
	digits, scale := s, 0
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		digits, scale = s[:dot]+s[dot+1:], len(s)-dot-1
	}
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, 0, fmt.Errorf("DECIMAL %q is not a number", s)
	}
	return n, scale, nil
}

// twosComplement is n as the shortest big-endian two's-complement bytes
// (Java's BigInteger.toByteArray, which Kafka Connect's Decimal uses).
func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n = ^(n-1) over enough bytes.
	m := new(big.Int).Neg(n)
	m.Sub(m, big.NewInt(1))
	b := m.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

func appendBase64(b []byte, raw string) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, []byte(raw))
	return append(b, '"')
}

// appendFloat writes a FLOAT or DOUBLE value as a JSON number.
func appendFloat(b []byte, c event.Column, v any) ([]byte, error) {
	switch x := v.(type) {
	case float32, float64:
		return appendValue(b, c, x)
	case string:
		if _, err := strconv.ParseFloat(x, 64); err == nil {
			return append(b, x...), nil
		}
	}
	if b2, err := appendInteger(b, v); err == nil {
		return b2, nil
	}
	return nil, fmt.Errorf("value %v (%T) is not a float", v, v)
}

func floatText(c event.Column, v any) string {
	switch x := v.(type) {
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// mysqlTypeName is the column's type as MySQL writes it, as far as the
// binlog tells (no display widths, no VARCHAR lengths).
func mysqlTypeName(c event.Column) string {
	name := typeName(c.Type)
	switch c.Type {
	case gomysql.MYSQL_TYPE_NEWDECIMAL:
		if c.Meta != 0 {
			name = fmt.Sprintf("decimal(%d,%d)", c.Meta>>8, c.Meta&0xff)
		}
	case gomysql.MYSQL_TYPE_TIME2, gomysql.MYSQL_TYPE_DATETIME2, gomysql.MYSQL_TYPE_TIMESTAMP2:
		if c.Meta > 0 {
			name = fmt.Sprintf("%s(%d)", name, c.Meta)
		}
	case gomysql.MYSQL_TYPE_BIT:
		name = fmt.Sprintf("bit(%d)", bitLen(c))
	case gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET:
		if len(c.Members) > 0 {
			q := make([]string, len(c.Members))
			for i, m := range c.Members {
				q[i] = "'" + strings.ReplaceAll(m, "'", "''") + "'"
			}
			name += "(" + strings.Join(q, ",") + ")"
		}
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING:
		if c.Binary {
			name = "varbinary"
		}
	case gomysql.MYSQL_TYPE_STRING:
		if c.Binary {
			name = "binary"
		}
	case gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_TINY_BLOB, gomysql.MYSQL_TYPE_MEDIUM_BLOB, gomysql.MYSQL_TYPE_LONG_BLOB:
		if !c.Binary {
			name = "text"
		}
	}
	if c.Unsigned {
		name += " unsigned"
	}
	return name
}

// jdbcType is the java.sql.Types code Canal's sqlType gives the column.
func jdbcType(c event.Column) int {
	switch c.Type {
	case gomysql.MYSQL_TYPE_BIT:
		return -7
	case gomysql.MYSQL_TYPE_TINY:
		return -6
	case gomysql.MYSQL_TYPE_SHORT:
		return 5
	case gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG:
		return 4
	case gomysql.MYSQL_TYPE_LONGLONG:
		return -5
	case gomysql.MYSQL_TYPE_FLOAT:
		return 7
	case gomysql.MYSQL_TYPE_DOUBLE:
		return 8
	case gomysql.MYSQL_TYPE_DECIMAL, gomysql.MYSQL_TYPE_NEWDECIMAL:
		return 3
	case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE:
		return 91
	case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
		return 92
	case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2, gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
		return 93
	case gomysql.MYSQL_TYPE_YEAR:
		return 12
	case gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET:
		return 1
	case gomysql.MYSQL_TYPE_STRING:
		if c.Binary {
			return -2
		}
		return 1
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING:
		if c.Binary {
			return -3
		}
		return 12
	case gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_TINY_BLOB, gomysql.MYSQL_TYPE_MEDIUM_BLOB, gomysql.MYSQL_TYPE_LONG_BLOB:
		if c.Binary {
			return 2004
		}
		return 2005
	case gomysql.MYSQL_TYPE_JSON:
		return 12
	}
	return 1111 // OTHER
}

// stringValue is a value as MySQL's text, the representation Canal uses
// for every value (binary bytes as ISO-8859-1, as Canal reads them).
func stringValue(c event.Column, v any) (string, error) {
	switch c.Type {
	case gomysql.MYSQL_TYPE_ENUM:
		return enumName(c, v), nil
	case gomysql.MYSQL_TYPE_SET:
		return strings.Join(setNames(c, v), ","), nil
	case gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE:
		return floatText(c, v), nil
	case gomysql.MYSQL_TYPE_BIT:
		i, u, isUint, _ := integer(v)
		if isUint {
			return strconv.FormatUint(u, 10), nil
		}
		return strconv.FormatUint(uint64(i), 10), nil
	}
	if s, ok := rawOf(v); ok {
		if c.Binary {
			var b strings.Builder
			for i := 0; i < len(s); i++ {
				b.WriteRune(rune(s[i]))
			}
			return b.String(), nil
		}
		return text(s), nil
	}
	if b, err := appendInteger(nil, v); err == nil {
		return string(b), nil
	}
	return "", fmt.Errorf("unsupported value type %T", v)
}

// changedColumns are the indexes where before and after differ.
func changedColumns(t *event.Table, before, after []any) []int {
	var out []int
	var a, b [64]byte
	for i := range t.Columns {
		x, err1 := appendValue(a[:0], t.Columns[i], before[i])
		y, err2 := appendValue(b[:0], t.Columns[i], after[i])
		if err1 != nil || err2 != nil || string(x) != string(y) {
			out = append(out, i)
		}
	}
	return out
}
