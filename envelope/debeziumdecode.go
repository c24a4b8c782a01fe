package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// Decoding Debezium's MySQL connector change events: the Connect schema,
// columns and values as the connector writes them.

// connectField is a field's Kafka Connect schema.
type connectField struct {
	Type       string            `json:"type"`
	Name       string            `json:"name"`
	Field      string            `json:"field"`
	Optional   bool              `json:"optional"`
	Parameters map[string]string `json:"parameters"`
	Fields     []connectField    `json:"fields"`
}

// debezium reads a change event, with or without {schema, payload}.
func (f *foreignDecoder) debezium(key, value []byte) (event.Change, Source, error) {
	var env struct {
		Schema  *connectField   `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	var ev struct {
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
		Op     string          `json:"op"`
		Source struct {
			DB    string `json:"db"`
			Table string `json:"table"`
			TsMs  int64  `json:"ts_ms"`
		} `json:"source"`
		Transaction *struct {
			ID    string `json:"id"`
			Order int    `json:"total_order"`
			Total int    `json:"total"`
		} `json:"transaction"`
	}
	body := value
	if err := json.Unmarshal(value, &env); err == nil && env.Payload != nil && env.Schema != nil {
		body = env.Payload
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return event.Change{}, Source{}, fmt.Errorf("%w: debezium event: %v", ErrInvalid, err)
	}
	src := Source{DB: ev.Source.DB, Table: ev.Source.Table, TsMs: ev.Source.TsMs}
	if ev.Transaction != nil {
		src.Position, src.Index, src.Total = ev.Transaction.ID, ev.Transaction.Order-1, ev.Transaction.Total
		src.Last = src.Total > 0
	}
	if src.DB == "" || src.Table == "" {
		return event.Change{}, src, fmt.Errorf("%w: debezium event without source.db and source.table", ErrInvalid)
	}
	schemas := map[string]connectField{}
	if env.Schema != nil {
		for _, part := range env.Schema.Fields {
			if part.Field == "after" || part.Field == "before" {
				for _, c := range part.Fields {
					schemas[c.Field] = c
				}
			}
		}
	}
	var keyNames []string
	if key != nil {
		var k struct {
			Schema  *connectField   `json:"schema"`
			Payload json.RawMessage `json:"payload"`
		}
		kb := []byte(key)
		if err := json.Unmarshal(key, &k); err == nil && k.Schema != nil && k.Payload != nil {
			kb = k.Payload
		}
		fields, err := orderedObject(kb)
		if err != nil {
			return event.Change{}, src, fmt.Errorf("%w: debezium key: %v", ErrInvalid, err)
		}
		for _, fl := range fields {
			keyNames = append(keyNames, fl.name)
		}
	}
	before, err := orderedObject(ev.Before)
	if err != nil {
		return event.Change{}, src, fmt.Errorf("%w: before: %v", ErrInvalid, err)
	}
	after, err := orderedObject(ev.After)
	if err != nil {
		return event.Change{}, src, fmt.Errorf("%w: after: %v", ErrInvalid, err)
	}
	shape := after
	if shape == nil {
		shape = before
	}
	t, err := f.table(src.DB, src.Table, shape, keyNames, func(name string, raw json.RawMessage) event.Column {
		return debeziumColumn(name, schemas[name], raw)
	})
	if err != nil {
		return event.Change{}, src, err
	}
	conv := func(c event.Column, raw json.RawMessage) (any, error) {
		return debeziumDecodeValue(c, schemas[c.Name], raw)
	}
	c := event.Change{Namespace: t.Namespace(), Table: t}
	switch ev.Op {
	case OpCreate, OpSnapshot:
		c.Op = event.OpInsert
	case OpUpdate:
		c.Op = event.OpUpdate
	case OpDelete:
		c.Op = event.OpDelete
	default:
		return event.Change{}, src, fmt.Errorf("%w: debezium op %q is not one of c, u, d, r", ErrInvalid, ev.Op)
	}
	return f.images(c, src, before, after, conv)
}

// debeziumColumn describes a column from its Connect schema, or from the
// JSON value without one.
func debeziumColumn(name string, s connectField, raw json.RawMessage) event.Column {
	c := event.Column{Name: name, Nullable: s.Optional || s.Type == ""}
	switch s.Name {
	case "org.apache.kafka.connect.data.Decimal":
		c.Type = gomysql.MYSQL_TYPE_NEWDECIMAL
		return c
	case "io.debezium.time.Date":
		c.Type = gomysql.MYSQL_TYPE_DATE
		return c
	case "io.debezium.time.MicroTime", "io.debezium.time.Time":
		c.Type = gomysql.MYSQL_TYPE_TIME2
		return c
	case "io.debezium.time.Timestamp", "io.debezium.time.MicroTimestamp":
		c.Type = gomysql.MYSQL_TYPE_DATETIME2
		return c
	case "io.debezium.time.ZonedTimestamp":
		c.Type = gomysql.MYSQL_TYPE_TIMESTAMP2
		return c
	case "io.debezium.data.Bits":
		c.Type = gomysql.MYSQL_TYPE_BIT
		return c
	}
	switch s.Type {
	case "int8", "int16", "int32", "int64":
		c.Type = gomysql.MYSQL_TYPE_LONGLONG
	case "float":
		c.Type = gomysql.MYSQL_TYPE_FLOAT
	case "double":
		c.Type = gomysql.MYSQL_TYPE_DOUBLE
	case "boolean":
		c.Type = gomysql.MYSQL_TYPE_BIT
	case "bytes":
		c.Type, c.Binary = gomysql.MYSQL_TYPE_BLOB, true
	case "string":
		c.Type = gomysql.MYSQL_TYPE_VARCHAR
	default: // no schema: from the value
		c.Type = jsonColumnType(raw)
	}
	return c
}

// debeziumDecodeValue turns a value back into MySQL's text or a number,
// as the MySQL source gives it.
func debeziumDecodeValue(c event.Column, s connectField, raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return nil, nil
	}
	str := func() (string, error) {
		var v string
		err := json.Unmarshal(raw, &v)
		return v, err
	}
	num := func() (int64, error) { return strconv.ParseInt(string(raw), 10, 64) }
	switch s.Name {
	case "org.apache.kafka.connect.data.Decimal":
		b64, err := str()
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, err
		}
		n := new(big.Int).SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		scale, _ := strconv.Atoi(s.Parameters["scale"])
		return decimalText(n, scale), nil
	case "io.debezium.time.Date":
		d, err := num()
		if err != nil {
			return nil, err
		}
		return time.Unix(d*86400, 0).UTC().Format("2006-01-02"), nil
	case "io.debezium.time.MicroTime":
		us, err := num()
		if err != nil {
			return nil, err
		}
		sign := ""
		if us < 0 {
			sign, us = "-", -us
		}
		return fmt.Sprintf("%s%02d:%02d:%02d.%06d", sign, us/3600e6, us/60e6%60, us/1e6%60, us%1e6), nil
	case "io.debezium.time.Timestamp":
		ms, err := num()
		if err != nil {
			return nil, err
		}
		return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05.000"), nil
	case "io.debezium.time.MicroTimestamp":
		us, err := num()
		if err != nil {
			return nil, err
		}
		return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.000000"), nil
	case "io.debezium.time.ZonedTimestamp":
		v, err := str()
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, err
		}
		return t.UTC().Format("2006-01-02 15:04:05.999999"), nil
	case "io.debezium.data.Bits":
		v, err := str()
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, err
		}
		var u uint64
		for i := len(b) - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		return int64(u), nil
	}
	switch s.Type {
	case "boolean":
		if string(raw) == "true" {
			return int64(1), nil
		}
		return int64(0), nil
	case "bytes":
		v, err := str()
		if err != nil {
			return nil, err
		}
		return base64.StdEncoding.DecodeString(v)
	}
	return jsonScalar(c, raw)
}

// decimalText writes n·10^-scale as MySQL's DECIMAL text.
func decimalText(n *big.Int, scale int) string {
	s := new(big.Int).Abs(n).String()
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if n.Sign() < 0 {
		s = "-" + s
	}
	return s
}
