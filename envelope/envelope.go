package envelope

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// Operation codes of the envelope's "op" field.
const (
	OpCreate   = "c"
	OpUpdate   = "u"
	OpDelete   = "d"
	OpSnapshot = "r" // a row read by an initial copy; applied as an upsert
)

// Meta is what the channel adds to every envelope of a Txn.
type Meta struct {
	Channel string // name of the channel that read the change
	Site    string // site of the channel's source; empty when not configured
}

// Message is one encoded change.
type Message struct {
	Schema, Table string
	// Key is the message key: namespace and row-key values. Equal rows give
	// equal keys.
	Key []byte
	// PartitionKey decides the partition. It is the namespace plus the
	// row key folded as event.AppendKeyValue folds it (so 'a' and 'A' of a
	// case-insensitive key share a partition), or the namespace alone for a
	// table with unique keys besides the primary key or without a row key:
	// changes that can conflict through a unique value must stay in one
	// partition to keep their order.
	PartitionKey []byte
	Value        []byte
}

// Encode turns the changes of txn into envelopes, in change order. Every
// change needs a Table (row changes of a MySQL source); a change without
// one is an error naming its namespace. now is the envelope's ts_ms.
func Encode(txn *event.Txn, meta Meta, now time.Time) ([]Message, error) {
	msgs := make([]Message, 0, len(txn.Changes))
	total := 0 // messages of the Txn, written on the last one
	for i := range txn.Changes {
		c := &txn.Changes[i]
		total++
		if c.Op == event.OpUpdate && c.Table != nil && keyChanged(c.Table, c.Before, c.After) {
			total++
		}
	}
	if txn.Partial {
		total = 0 // a chunk: the transaction goes on
	}
	add := func(c *event.Change, op string, before, after []any) error {
		m := Message{Schema: c.Table.Schema, Table: c.Table.Name}
		image := after
		if image == nil {
			image = before
		}
		m.Key, m.PartitionKey = rowKeys(c.Table, image)
		v, err := encodeEnvelope(c.Table, op, before, after, txn, meta, now, len(msgs), total)
		if err != nil {
			return fmt.Errorf("change of %s at %s: %w", c.Table.Namespace(), txn.Pos, err)
		}
		m.Value = v
		msgs = append(msgs, m)
		return nil
	}
	for i := range txn.Changes {
		c := &txn.Changes[i]
		if c.Table == nil {
			return nil, fmt.Errorf("change %d of %s at %s: no table description; the Kafka envelope carries row changes with their columns (MySQL sources)", i, c.Namespace, txn.Pos)
		}
		var err error
		switch c.Op {
		case event.OpInsert:
			err = add(c, OpCreate, nil, c.After)
		case event.OpDelete:
			err = add(c, OpDelete, c.Before, nil)
		case event.OpUpdate:
			if keyChanged(c.Table, c.Before, c.After) {
				if err = add(c, OpDelete, c.Before, nil); err == nil {
					err = add(c, OpCreate, nil, c.After)
				}
			} else {
				err = add(c, OpUpdate, c.Before, c.After)
			}
		default:
			err = fmt.Errorf("change %d of %s at %s: operation %s cannot be carried in the Kafka envelope", i, c.Namespace, txn.Pos, c.Op)
		}
		if err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// keyChanged reports whether an update moves the row to another row key
// (byte-wise: 'a' → 'A' is a change the target must see as delete+create).
func keyChanged(t *event.Table, before, after []any) bool {
	cols, ok := t.RowKey()
	if !ok {
		return false
	}
	var a, b []byte
	for _, ci := range cols {
		if ci >= len(before) || ci >= len(after) {
			return true
		}
		var err error
		if a, err = appendValue(a[:0], t.Columns[ci], before[ci]); err != nil {
			return true
		}
		if b, err = appendValue(b[:0], t.Columns[ci], after[ci]); err != nil {
			return true
		}
		if !bytes.Equal(a, b) {
			return true
		}
	}
	return false
}

// rowKeys builds the message key {"db":…,"table":…,"key":{…}} and the
// partition key of a row image.
func rowKeys(t *event.Table, image []any) (key, partition []byte) {
	key = append(key, `{"db":`...)
	key = appendString(key, t.Schema)
	key = append(key, `,"table":`...)
	key = appendString(key, t.Name)
	partition = append(partition, t.Schema...)
	partition = append(partition, '.')
	partition = append(partition, t.Name...)
	cols, ok := t.RowKey()
	if !ok {
		return append(key, '}'), partition
	}
	key = append(key, `,"key":{`...)
	for i, ci := range cols {
		if i > 0 {
			key = append(key, ',')
		}
		key = appendString(key, t.Columns[ci].Name)
		key = append(key, ':')
		var v any
		if ci < len(image) {
			v = image[ci]
		}
		var err error
		if key, err = appendValue(key, t.Columns[ci], v); err != nil {
			key = append(key, "null"...)
		}
	}
	key = append(key, "}}"...)
	if len(t.UniqueKeys) == 0 {
		partition = append(partition, 0)
		for _, ci := range cols {
			var v any
			if ci < len(image) {
				v = image[ci]
			}
			partition = event.AppendKeyValue(partition, v)
		}
	}
	return key, partition
}

// encodeEnvelope writes one envelope. Field order is fixed (op, before,
// after, source, ts_ms, schema) so equal changes encode to equal bytes.
func encodeEnvelope(t *event.Table, op string, before, after []any, txn *event.Txn, meta Meta, now time.Time, index, total int) ([]byte, error) {
	b := make([]byte, 0, 256+64*len(t.Columns))
	b = append(b, `{"op":"`...)
	b = append(b, op...)
	b = append(b, `","before":`...)
	var err error
	if b, err = appendImage(b, t, before); err != nil {
		return nil, err
	}
	b = append(b, `,"after":`...)
	if b, err = appendImage(b, t, after); err != nil {
		return nil, err
	}
	b = append(b, `,"source":{"channel":`...)
	b = appendString(b, meta.Channel)
	b = append(b, `,"site":`...)
	b = appendString(b, meta.Site)
	b = append(b, `,"origin":`...)
	b = appendString(b, txn.Origin)
	b = append(b, `,"db":`...)
	b = appendString(b, t.Schema)
	b = append(b, `,"table":`...)
	b = appendString(b, t.Name)
	b = append(b, `,"position":`...)
	b = appendString(b, string(txn.Pos))
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, txn.Seq, 10)
	b = append(b, `,"index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	if total > 0 && index == total-1 {
		b = append(b, `,"total":`...)
		b = strconv.AppendInt(b, int64(total), 10)
	}
	b = append(b, `,"ts_ms":`...)
	b = strconv.AppendInt(b, millis(txn.CommitTime), 10)
	b = append(b, `},"ts_ms":`...)
	b = strconv.AppendInt(b, millis(now), 10)
	b = append(b, `,"schema":`...)
	b = appendSchema(b, t)
	return append(b, '}'), nil
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// appendImage writes a row image as an object of column name → value, in
// column order; nil image → null.
func appendImage(b []byte, t *event.Table, image []any) ([]byte, error) {
	if image == nil {
		return append(b, "null"...), nil
	}
	if len(image) != len(t.Columns) {
		return nil, fmt.Errorf("row image has %d values for %d columns", len(image), len(t.Columns))
	}
	b = append(b, '{')
	for i, c := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, c.Name)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, c, image[i]); err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
	}
	return append(b, '}'), nil
}

// appendValue encodes one column value:
//
//	nil                           null
//	int*/uint*                    number, exact digits (uint64 above 2^63 too;
//	                              BIT and SET bitmasks as the int64 the source gave)
//	float32                       number, shortest digits that parse back to the float32
//	float64                       number, shortest round-trip digits
//	string/[]byte, UTF-8 text     string (DECIMAL, temporal, text and JSON columns)
//	string/[]byte otherwise       {"base64":"…"} — binary columns, or text in a
//	                              non-UTF-8 charset whose bytes are not valid UTF-8
//
// NaN and ±Inf cannot come from MySQL and are an error.
func appendValue(b []byte, c event.Column, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("%v cannot be encoded", x)
		}
		return strconv.AppendFloat(b, float64(x), 'g', -1, 32), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v cannot be encoded", x)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64), nil
	case string:
		return appendText(b, c, x), nil
	case []byte:
		return appendText(b, c, string(x)), nil
	case bool:
		if x {
			return append(b, '1'), nil
		}
		return append(b, '0'), nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

func appendText(b []byte, c event.Column, s string) []byte {
	if !c.Binary && utf8.ValidString(s) {
		return appendString(b, s)
	}
	b = append(b, `{"base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, []byte(s))
	return append(b, `"}`...)
}

// appendString appends s as a JSON string. s must be valid UTF-8 for the
// output to be valid JSON; invalid bytes are replaced by U+FFFD, which is
// why values that may not be UTF-8 go through appendText.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendSchema writes the table description:
// {"columns":[{"name","type","unsigned","binary","nullable"}…],"primary_key":[names],"unique_keys":[{"name","columns":[names]}]}.
// type is the MySQL binlog type code (mysql.MYSQL_TYPE_*), with type_name
// for people reading it.
func appendSchema(b []byte, t *event.Table) []byte {
	b = append(b, `{"columns":[`...)
	for i, c := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, c.Name)
		b = append(b, `,"type":`...)
		b = strconv.AppendUint(b, uint64(c.Type), 10)
		b = append(b, `,"type_name":`...)
		b = appendString(b, typeName(c.Type))
		b = append(b, `,"unsigned":`...)
		b = strconv.AppendBool(b, c.Unsigned)
		b = append(b, `,"binary":`...)
		b = strconv.AppendBool(b, c.Binary)
		b = append(b, `,"nullable":`...)
		b = strconv.AppendBool(b, c.Nullable)
		b = append(b, '}')
	}
	b = append(b, `],"primary_key":`...)
	b = appendNames(b, t, t.PrimaryKey)
	b = append(b, `,"unique_keys":[`...)
	for i, uk := range t.UniqueKeys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, uk.Name)
		b = append(b, `,"columns":`...)
		b = appendNames(b, t, uk.Columns)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func appendNames(b []byte, t *event.Table, cols []int) []byte {
	b = append(b, '[')
	for i, ci := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		if ci < len(t.Columns) {
			b = appendString(b, t.Columns[ci].Name)
		} else {
			b = append(b, "null"...)
		}
	}
	return append(b, ']')
}

// typeName names a binlog column type code for readers of the envelope.
func typeName(t byte) string {
	switch t {
	case gomysql.MYSQL_TYPE_DECIMAL, gomysql.MYSQL_TYPE_NEWDECIMAL:
		return "decimal"
	case gomysql.MYSQL_TYPE_TINY:
		return "tinyint"
	case gomysql.MYSQL_TYPE_SHORT:
		return "smallint"
	case gomysql.MYSQL_TYPE_INT24:
		return "mediumint"
	case gomysql.MYSQL_TYPE_LONG:
		return "int"
	case gomysql.MYSQL_TYPE_LONGLONG:
		return "bigint"
	case gomysql.MYSQL_TYPE_FLOAT:
		return "float"
	case gomysql.MYSQL_TYPE_DOUBLE:
		return "double"
	case gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
		return "timestamp"
	case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE:
		return "date"
	case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
		return "time"
	case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2:
		return "datetime"
	case gomysql.MYSQL_TYPE_YEAR:
		return "year"
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING:
		return "varchar"
	case gomysql.MYSQL_TYPE_STRING:
		return "char"
	case gomysql.MYSQL_TYPE_BIT:
		return "bit"
	case gomysql.MYSQL_TYPE_JSON:
		return "json"
	case gomysql.MYSQL_TYPE_ENUM:
		return "enum"
	case gomysql.MYSQL_TYPE_SET:
		return "set"
	case gomysql.MYSQL_TYPE_TINY_BLOB, gomysql.MYSQL_TYPE_MEDIUM_BLOB, gomysql.MYSQL_TYPE_LONG_BLOB, gomysql.MYSQL_TYPE_BLOB:
		return "blob"
	case gomysql.MYSQL_TYPE_GEOMETRY:
		return "geometry"
	}
	return "type" + strconv.Itoa(int(t))
}

// OpDDL is the "op" of a schema-change envelope (published only when the
// sink is configured to).
const OpDDL = "ddl"

// EncodeDDL writes a schema-change envelope:
// {"op":"ddl","ddl":{"schema":…,"statement":…},"source":{…},"ts_ms":…}.
func EncodeDDL(txn *event.Txn, meta Meta, now time.Time) []byte {
	schema, stmt := "", ""
	if txn.DDL != nil {
		schema, stmt = txn.DDL.Schema, txn.DDL.Statement
	}
	b := append([]byte(nil), `{"op":"ddl","ddl":{"schema":`...)
	b = appendString(b, schema)
	b = append(b, `,"statement":`...)
	b = appendString(b, stmt)
	b = append(b, `},"source":{"channel":`...)
	b = appendString(b, meta.Channel)
	b = append(b, `,"site":`...)
	b = appendString(b, meta.Site)
	b = append(b, `,"origin":`...)
	b = appendString(b, txn.Origin)
	b = append(b, `,"db":`...)
	b = appendString(b, schema)
	b = append(b, `,"table":"","position":`...)
	b = appendString(b, string(txn.Pos))
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, txn.Seq, 10)
	b = append(b, `,"index":0,"ts_ms":`...)
	b = strconv.AppendInt(b, millis(txn.CommitTime), 10)
	b = append(b, `},"ts_ms":`...)
	b = strconv.AppendInt(b, millis(now), 10)
	return append(b, '}')
}
