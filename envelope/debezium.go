package envelope

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// debeziumEncoder writes Debezium's MySQL connector change events as
// Kafka Connect's JSON converter serialises them: the value
// {before, after, source, op, ts_ms, transaction} and the key with the
// primary-key columns, each wrapped in {schema, payload} when Schemas is
// set; a delete is followed by a tombstone (null value) unless
// NoTombstones. Values follow the connector's defaults
// (time.precision.mode=adaptive_time_microseconds,
// bigint.unsigned.handling.mode=long, binary.handling.mode=bytes,
// decimal.handling.mode from DecimalHandling); see docs/kafka.md.
type debeziumEncoder struct {
	meta    Meta
	o       FormatOptions
	schemas sync.Map // *event.Table → []byte: the value's Connect schema
}

func (e *debeziumEncoder) Encode(txn *event.Txn, now time.Time) ([]Message, error) {
	rs, err := rows(txn)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(rs)+1)
	for _, r := range rs {
		m := Message{Schema: r.table.Schema, Table: r.table.Name}
		image := r.after
		if image == nil {
			image = r.before
		}
		_, m.PartitionKey = rowKeys(r.table, image)
		if m.Key, err = e.key(r.table, image); err != nil {
			return nil, fmt.Errorf("change of %s at %s: %w", r.table.Namespace(), txn.Pos, err)
		}
		if m.Value, err = e.value(txn, r, now, len(rs)); err != nil {
			return nil, fmt.Errorf("change of %s at %s: %w", r.table.Namespace(), txn.Pos, err)
		}
		out = append(out, m)
		if r.op == OpDelete && !e.o.NoTombstones {
			t := m
			t.Value = nil
			out = append(out, t)
		}
	}
	return out, nil
}

func (e *debeziumEncoder) serverName() string {
	if e.meta.Channel != "" {
		return e.meta.Channel
	}
	return "hamal"
}

// key is {pk columns…}, null for a table without a row key.
func (e *debeziumEncoder) key(t *event.Table, image []any) ([]byte, error) {
	cols, ok := t.RowKey()
	if !ok {
		return nil, nil
	}
	var b []byte
	if e.o.Schemas {
		b = append(b, `{"schema":{"type":"struct","fields":[`...)
		for i, ci := range cols {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.fieldSchema(b, t.Columns[ci], false)
		}
		b = append(b, `],"optional":false,"name":`...)
		b = appendString(b, e.serverName()+"."+t.Schema+"."+t.Name+".Key")
		b = append(b, `},"payload":`...)
	}
	b = append(b, '{')
	for i, ci := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t.Columns[ci].Name)
		b = append(b, ':')
		var err error
		if b, err = e.appendValue(b, t.Columns[ci], image[ci]); err != nil {
			return nil, fmt.Errorf("key column %s: %w", t.Columns[ci].Name, err)
		}
	}
	b = append(b, '}')
	if e.o.Schemas {
		b = append(b, '}')
	}
	return b, nil
}

func (e *debeziumEncoder) value(txn *event.Txn, r row, now time.Time, total int) ([]byte, error) {
	t := r.table
	b := make([]byte, 0, 512+64*len(t.Columns))
	if e.o.Schemas {
		b = append(b, `{"schema":`...)
		if v, ok := e.schemas.Load(t); ok {
			b = append(b, v.([]byte)...)
		} else {
			schema := e.valueSchema(nil, t)
			e.schemas.Store(t, schema)
			b = append(b, schema...)
		}
		b = append(b, `,"payload":`...)
	}
	b = append(b, `{"before":`...)
	var err error
	if b, err = e.appendImage(b, t, r.before); err != nil {
		return nil, err
	}
	b = append(b, `,"after":`...)
	if b, err = e.appendImage(b, t, r.after); err != nil {
		return nil, err
	}
	b = append(b, `,"source":{"version":"hamal","connector":"mysql","name":`...)
	b = appendString(b, e.serverName())
	b = append(b, `,"ts_ms":`...)
	b = strconv.AppendInt(b, millis(txn.CommitTime), 10)
	b = append(b, `,"snapshot":"false","db":`...)
	b = appendString(b, t.Schema)
	b = append(b, `,"sequence":null,"table":`...)
	b = appendString(b, t.Name)
	b = append(b, `,"server_id":0,"gtid":`...)
	b = appendString(b, string(txn.Pos))
	b = append(b, `,"file":"","pos":0,"row":`...)
	b = strconv.AppendInt(b, int64(r.index), 10)
	b = append(b, `,"thread":null,"query":null},"op":"`...)
	op := r.op
	if op == OpCreate && txn.Seq == 0 && txn.Pos == nil {
		op = OpSnapshot
	}
	b = append(b, op...)
	b = append(b, `","ts_ms":`...)
	b = strconv.AppendInt(b, millis(now), 10)
	b = append(b, `,"transaction":`...)
	b = appendTransaction(b, txn, r.index, total)
	b = append(b, '}')
	if e.o.Schemas {
		b = append(b, '}')
	}
	return b, nil
}

// appendTransaction writes Debezium's transaction block: the source
// transaction's id (its position), the message's order in it (1-based),
// and, on its last message, the total (Hamal's addition; a chunk of a
// huge transaction carries none).
func appendTransaction(b []byte, txn *event.Txn, index, total int) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, string(txn.Pos))
	b = append(b, `,"total_order":`...)
	b = strconv.AppendInt(b, int64(index+1), 10)
	b = append(b, `,"data_collection_order":`...)
	b = strconv.AppendInt(b, int64(index+1), 10)
	if index == total-1 && !txn.Partial {
		b = append(b, `,"total":`...)
		b = strconv.AppendInt(b, int64(total), 10)
	}
	return append(b, '}')
}

func (e *debeziumEncoder) appendImage(b []byte, t *event.Table, image []any) ([]byte, error) {
	if image == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	for i, c := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, c.Name)
		b = append(b, ':')
		var err error
		if b, err = e.appendValue(b, c, image[i]); err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
	}
	return append(b, '}'), nil
}

// appendValue writes one value in the connector's default representation.
func (e *debeziumEncoder) appendValue(b []byte, c event.Column, v any) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	s, isText := rawOf(v)
	switch c.Type {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_YEAR:
		return appendInteger(b, v)
	case gomysql.MYSQL_TYPE_LONGLONG:
		// bigint.unsigned.handling.mode=long: Java's long, so values
		// above 2^63-1 wrap as they do in Debezium.
		i, u, isUint, ok := integer(v)
		if !ok {
			return nil, fmt.Errorf("value %v (%T) is not an integer", v, v)
		}
		if isUint {
			i = int64(u)
		}
		return strconv.AppendInt(b, i, 10), nil
	case gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE:
		return appendFloat(b, c, v)
	case gomysql.MYSQL_TYPE_DECIMAL, gomysql.MYSQL_TYPE_NEWDECIMAL:
		if !isText {
			return nil, fmt.Errorf("DECIMAL value %v (%T) is not text", v, v)
		}
		switch e.o.DecimalHandling {
		case "string":
			return appendString(b, s), nil
		case "double":
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("DECIMAL %q: %v", s, err)
			}
			return strconv.AppendFloat(b, f, 'g', -1, 64), nil
		}
		n, _, err := unscaled(s)
		if err != nil {
			return nil, err
		}
		return appendBase64(b, string(twosComplement(n))), nil
	case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE:
		t, zero, err := parseDateTime(s)
		if err != nil || !isText {
			return nil, fmt.Errorf("DATE %v: %v", v, err)
		}
		if zero {
			return zeroTemporal(b, c), nil
		}
		return strconv.AppendInt(b, t.Unix()/86400-boolInt(t.Unix()%86400 < 0), 10), nil
	case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
		us, err := timeMicros(s)
		if err != nil || !isText {
			return nil, fmt.Errorf("TIME %v: %v", v, err)
		}
		return strconv.AppendInt(b, us, 10), nil
	case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2:
		t, zero, err := parseDateTime(s)
		if err != nil || !isText {
			return nil, fmt.Errorf("DATETIME %v: %v", v, err)
		}
		if zero {
			return zeroTemporal(b, c), nil
		}
		if fsp(c, s) <= 3 {
			return strconv.AppendInt(b, t.UnixMilli(), 10), nil
		}
		return strconv.AppendInt(b, t.UnixMicro(), 10), nil
	case gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
		t, zero, err := parseDateTime(s)
		if err != nil || !isText {
			return nil, fmt.Errorf("TIMESTAMP %v: %v", v, err)
		}
		if zero {
			if c.Nullable {
				return append(b, "null"...), nil
			}
			t = time.Unix(0, 0).UTC()
		}
		layout := "2006-01-02T15:04:05"
		if n := fsp(c, s); n > 0 {
			layout += "." + strings.Repeat("0", n)
		}
		return appendString(b, t.Format(layout)+"Z"), nil
	case gomysql.MYSQL_TYPE_ENUM:
		return appendString(b, enumName(c, v)), nil
	case gomysql.MYSQL_TYPE_SET:
		return appendString(b, strings.Join(setNames(c, v), ",")), nil
	case gomysql.MYSQL_TYPE_BIT:
		i, u, isUint, ok := integer(v)
		if !ok {
			if isText { // already bytes
				return appendBase64(b, s), nil
			}
			return nil, fmt.Errorf("BIT value %v (%T)", v, v)
		}
		bits := uint64(i)
		if isUint {
			bits = u
		}
		n := bitLen(c)
		if n == 1 {
			return strconv.AppendBool(b, bits != 0), nil
		}
		raw := make([]byte, (n+7)/8) // little-endian, as Debezium's Bits
		for k := range raw {
			raw[k] = byte(bits >> (8 * k))
		}
		return appendBase64(b, string(raw)), nil
	}
	if isText {
		if c.Binary || c.Type == gomysql.MYSQL_TYPE_GEOMETRY {
			return appendBase64(b, s), nil // BYTES, base64 in the JSON converter
		}
		return appendString(b, text(s)), nil
	}
	return appendValue(b, c, v)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// zeroTemporal is a zero date: null when the column allows it, else the
// epoch (Debezium's documented behaviour).
func zeroTemporal(b []byte, c event.Column) []byte {
	if c.Nullable {
		return append(b, "null"...)
	}
	return append(b, '0')
}

// fieldSchema writes a column's Kafka Connect schema.
func (e *debeziumEncoder) fieldSchema(b []byte, c event.Column, optional bool) []byte {
	typ, name := "string", ""
	var params [][2]string
	switch c.Type {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT:
		typ = "int16"
		if c.Unsigned && c.Type == gomysql.MYSQL_TYPE_SHORT {
			typ = "int32"
		}
	case gomysql.MYSQL_TYPE_INT24:
		typ = "int32"
	case gomysql.MYSQL_TYPE_LONG:
		typ = "int32"
		if c.Unsigned {
			typ = "int64"
		}
	case gomysql.MYSQL_TYPE_LONGLONG:
		typ = "int64"
	case gomysql.MYSQL_TYPE_YEAR:
		typ, name = "int32", "io.debezium.time.Year"
	case gomysql.MYSQL_TYPE_FLOAT:
		typ = "float"
	case gomysql.MYSQL_TYPE_DOUBLE:
		typ = "double"
	case gomysql.MYSQL_TYPE_DECIMAL, gomysql.MYSQL_TYPE_NEWDECIMAL:
		switch e.o.DecimalHandling {
		case "string":
		case "double":
			typ = "double"
		default:
			typ, name = "bytes", "org.apache.kafka.connect.data.Decimal"
			params = [][2]string{{"scale", strconv.Itoa(int(c.Meta & 0xff))}, {"connect.decimal.precision", strconv.Itoa(int(c.Meta >> 8))}}
		}
	case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE:
		typ, name = "int32", "io.debezium.time.Date"
	case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
		typ, name = "int64", "io.debezium.time.MicroTime"
	case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2:
		typ, name = "int64", "io.debezium.time.Timestamp"
		if c.Meta > 3 {
			name = "io.debezium.time.MicroTimestamp"
		}
	case gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
		name = "io.debezium.time.ZonedTimestamp"
	case gomysql.MYSQL_TYPE_ENUM:
		name = "io.debezium.data.Enum"
		params = [][2]string{{"allowed", strings.Join(c.Members, ",")}}
	case gomysql.MYSQL_TYPE_SET:
		name = "io.debezium.data.EnumSet"
		params = [][2]string{{"allowed", strings.Join(c.Members, ",")}}
	case gomysql.MYSQL_TYPE_BIT:
		if bitLen(c) == 1 {
			typ = "boolean"
		} else {
			typ, name = "bytes", "io.debezium.data.Bits"
			params = [][2]string{{"length", strconv.Itoa(bitLen(c))}}
		}
	case gomysql.MYSQL_TYPE_JSON:
		name = "io.debezium.data.Json"
	default:
		if c.Binary || c.Type == gomysql.MYSQL_TYPE_GEOMETRY {
			typ = "bytes"
		}
	}
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","optional":`...)
	b = strconv.AppendBool(b, optional)
	if name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, name)
		b = append(b, `,"version":1`...)
	}
	if len(params) > 0 {
		b = append(b, `,"parameters":{`...)
		for i, p := range params {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p[0])
			b = append(b, ':')
			b = appendString(b, p[1])
		}
		b = append(b, '}')
	}
	b = append(b, `,"field":`...)
	b = appendString(b, c.Name)
	return append(b, '}')
}

// valueSchema writes the envelope's Kafka Connect schema.
func (e *debeziumEncoder) valueSchema(b []byte, t *event.Table) []byte {
	rowName := e.serverName() + "." + t.Schema + "." + t.Name + ".Value"
	image := func(b []byte, field string) []byte {
		b = append(b, `{"type":"struct","fields":[`...)
		for i, c := range t.Columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.fieldSchema(b, c, c.Nullable)
		}
		b = append(b, `],"optional":true,"name":`...)
		b = appendString(b, rowName)
		b = append(b, `,"field":"`...)
		b = append(b, field...)
		return append(b, `"}`...)
	}
	b = append(b, `{"type":"struct","fields":[`...)
	b = image(b, "before")
	b = append(b, ',')
	b = image(b, "after")
	b = append(b, `,{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"string","optional":true,"field":"table"},{"type":"int64","optional":false,"field":"server_id"},{"type":"string","optional":true,"field":"gtid"},{"type":"string","optional":false,"field":"file"},{"type":"int64","optional":false,"field":"pos"},{"type":"int32","optional":false,"field":"row"},{"type":"int64","optional":true,"field":"thread"},{"type":"string","optional":true,"field":"query"}],"optional":false,"name":"io.debezium.connector.mysql.Source","field":"source"},{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"},{"type":"int64","optional":true,"field":"total"}],"optional":true,"name":"event.block","field":"transaction"}],"optional":false,"name":`...)
	b = appendString(b, e.serverName()+"."+t.Schema+"."+t.Name+".Envelope")
	return append(b, '}')
}
