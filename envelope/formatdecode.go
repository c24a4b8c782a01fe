package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// ErrTombstone marks a message with a null value (Debezium's tombstone
// after a delete): nothing to apply.
var ErrTombstone = errors.New("tombstone")

// ChangeDecoder turns the messages of one format back into changes. Not
// safe for concurrent use.
type ChangeDecoder interface {
	// Decode parses one message into a change and what is known of its
	// source (db, table, commit time, transaction). Errors wrap
	// ErrInvalid, ErrDDL or ErrTombstone.
	Decode(key, value []byte) (event.Change, Source, error)
}

// NewChangeDecoder returns the decoder of a format.
func NewChangeDecoder(format string) (ChangeDecoder, error) {
	switch format {
	case "", FormatHamal:
		return hamalDecoder{NewDecoder()}, nil
	case FormatDebezium:
		return &foreignDecoder{format: format, tables: map[string]*event.Table{}}, nil
	case FormatCanal:
		return &foreignDecoder{format: format, tables: map[string]*event.Table{}}, nil
	case FormatMaxwell:
		return &foreignDecoder{format: format, tables: map[string]*event.Table{}}, nil
	}
	return nil, fmt.Errorf("format %q is not one of hamal, debezium, canal, maxwell", format)
}

type hamalDecoder struct{ d *Decoder }

func (h hamalDecoder) Decode(_, value []byte) (event.Change, Source, error) {
	if value == nil {
		return event.Change{}, Source{}, ErrTombstone
	}
	return h.d.Decode(value)
}

// foreignDecoder reads Debezium, Canal and Maxwell messages. A table's
// description is built from the message: columns in the order the row
// object names them, the key from the message (Debezium's key fields,
// Canal's pkNames, Maxwell's "pk.<col>" key fields or
// primary_key_columns), types from the Connect schema (Debezium with
// schemas), mysqlType (Canal) or the JSON value (Maxwell, Debezium without
// schemas).
type foreignDecoder struct {
	format string
	tables map[string]*event.Table
}

// field is one column of a row object, in order.
type field struct {
	name string
	raw  json.RawMessage
}

// orderedObject reads a JSON object keeping its field order.
func orderedObject(raw json.RawMessage) ([]field, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	t, err := d.Token()
	if err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("row is not an object")
	}
	var out []field
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, field{name: k.(string), raw: v})
	}
	return out, nil
}

// connectField is a field's Kafka Connect schema.
type connectField struct {
	Type       string            `json:"type"`
	Name       string            `json:"name"`
	Field      string            `json:"field"`
	Optional   bool              `json:"optional"`
	Parameters map[string]string `json:"parameters"`
	Fields     []connectField    `json:"fields"`
}

func (f *foreignDecoder) Decode(key, value []byte) (event.Change, Source, error) {
	if value == nil {
		return event.Change{}, Source{}, ErrTombstone
	}
	switch f.format {
	case FormatDebezium:
		return f.debezium(key, value)
	case FormatCanal:
		return f.canal(key, value)
	}
	return f.maxwell(key, value)
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

// images fills the change's images per its op.
func (f *foreignDecoder) images(c event.Change, src Source, before, after []field, conv func(event.Column, json.RawMessage) (any, error)) (event.Change, Source, error) {
	var err error
	if c.Op != event.OpInsert {
		if c.Before, err = imageOf(c.Table, before, conv); err != nil || c.Before == nil {
			return event.Change{}, src, fmt.Errorf("%w: %s of %s needs a before image: %v", ErrInvalid, c.Op, c.Namespace, err)
		}
	}
	if c.Op != event.OpDelete {
		if c.After, err = imageOf(c.Table, after, conv); err != nil || c.After == nil {
			return event.Change{}, src, fmt.Errorf("%w: %s of %s needs an after image: %v", ErrInvalid, c.Op, c.Namespace, err)
		}
	}
	return c, src, nil
}

func imageOf(t *event.Table, fields []field, conv func(event.Column, json.RawMessage) (any, error)) ([]any, error) {
	if fields == nil {
		return nil, nil
	}
	if len(fields) != len(t.Columns) {
		return nil, fmt.Errorf("row has %d fields for %d columns", len(fields), len(t.Columns))
	}
	out := make([]any, len(t.Columns))
	for i, fl := range fields {
		if fl.name != t.Columns[i].Name {
			return nil, fmt.Errorf("field %d is %s, want %s", i, fl.name, t.Columns[i].Name)
		}
		v, err := conv(t.Columns[i], fl.raw)
		if err != nil {
			return nil, fmt.Errorf("column %s: %v", fl.name, err)
		}
		out[i] = v
	}
	return out, nil
}

// table returns the cached description of a table of this shape.
func (f *foreignDecoder) table(db, name string, shape []field, keyNames []string, column func(string, json.RawMessage) event.Column) (*event.Table, error) {
	if len(shape) == 0 {
		return nil, fmt.Errorf("%w: %s.%s: the message has no row", ErrInvalid, db, name)
	}
	var sig strings.Builder
	sig.WriteString(db + "\x00" + name + "\x00" + strings.Join(keyNames, ",") + "\x00")
	cols := make([]event.Column, len(shape))
	for i, fl := range shape {
		cols[i] = column(fl.name, fl.raw)
		fmt.Fprintf(&sig, "%s:%d:%v\x00", cols[i].Name, cols[i].Type, cols[i].Binary)
	}
	if t, ok := f.tables[sig.String()]; ok {
		return t, nil
	}
	t := &event.Table{Schema: db, Name: name, Columns: cols, UniqueUnknown: true}
	for _, k := range keyNames {
		found := false
		for i, c := range cols {
			if strings.EqualFold(c.Name, k) {
				t.PrimaryKey, found = append(t.PrimaryKey, i), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %s.%s: key column %q is not in the row", ErrInvalid, db, name, k)
		}
	}
	if len(t.PrimaryKey) == 0 {
		return nil, fmt.Errorf("%w: %s.%s: the message names no primary key; Hamal applies changes by key", ErrInvalid, db, name)
	}
	if len(f.tables) >= 4096 {
		clear(f.tables)
	}
	f.tables[sig.String()] = t
	return t, nil
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

func jsonColumnType(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		if bytes.ContainsAny(raw, "eE") {
			return gomysql.MYSQL_TYPE_DOUBLE
		}
		if bytes.ContainsRune(raw, '.') { // kept as its digits: a DECIMAL loses none
			return gomysql.MYSQL_TYPE_NEWDECIMAL
		}
		return gomysql.MYSQL_TYPE_LONGLONG
	}
	return gomysql.MYSQL_TYPE_VARCHAR
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

// jsonScalar is a plain JSON value: a string, an exact integer, a float
// for FLOAT/DOUBLE columns, else the number's text (DECIMAL); true/false
// as 1/0; an array (Maxwell's SET) as its comma-joined members; an
// object (Maxwell's JSON column) as its text.
func jsonScalar(c event.Column, raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("empty value")
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case 't':
		return int64(1), nil
	case 'f':
		return int64(0), nil
	case '[':
		var items []string
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		return strings.Join(items, ","), nil
	case '{':
		return string(raw), nil
	}
	s := string(raw)
	switch c.Type {
	case gomysql.MYSQL_TYPE_FLOAT:
		v, err := strconv.ParseFloat(s, 32)
		return float32(v), err
	case gomysql.MYSQL_TYPE_DOUBLE:
		v, err := strconv.ParseFloat(s, 64)
		return v, err
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	return s, nil // a DECIMAL's digits, or a float the sink casts
}

// canal reads a flat message of one row (a message of several rows is
// refused: Hamal publishes and applies one row per message).
func (f *foreignDecoder) canal(key, value []byte) (event.Change, Source, error) {
	var m struct {
		Data      []json.RawMessage `json:"data"`
		Old       []json.RawMessage `json:"old"`
		Database  string            `json:"database"`
		Table     string            `json:"table"`
		Es        int64             `json:"es"`
		IsDdl     bool              `json:"isDdl"`
		MysqlType map[string]string `json:"mysqlType"`
		PkNames   []string          `json:"pkNames"`
		Type      string            `json:"type"`
		SQL       string            `json:"sql"`
		Hamal     *hamalTxn         `json:"_hamal"`
	}
	if err := json.Unmarshal(value, &m); err != nil {
		return event.Change{}, Source{}, fmt.Errorf("%w: canal message: %v", ErrInvalid, err)
	}
	src := Source{DB: m.Database, Table: m.Table, TsMs: m.Es}
	m.Hamal.fill(&src)
	if m.IsDdl {
		return event.Change{}, src, fmt.Errorf("%w: %q: Hamal does not apply DDL read from Kafka; apply it to the target by hand", ErrDDL, m.SQL)
	}
	if len(m.Data) != 1 {
		return event.Change{}, src, fmt.Errorf("%w: canal message of %s.%s holds %d rows; Hamal applies flat messages of one row (canal.mq.flatMessage with one row per message)", ErrInvalid, m.Database, m.Table, len(m.Data))
	}
	data, err := orderedObject(m.Data[0])
	if err != nil {
		return event.Change{}, src, fmt.Errorf("%w: data: %v", ErrInvalid, err)
	}
	t, err := f.table(m.Database, m.Table, data, m.PkNames, func(name string, _ json.RawMessage) event.Column {
		return canalColumn(name, m.MysqlType[name])
	})
	if err != nil {
		return event.Change{}, src, err
	}
	conv := func(c event.Column, raw json.RawMessage) (any, error) {
		v, err := jsonScalar(event.Column{Type: gomysql.MYSQL_TYPE_VARCHAR}, raw)
		s, ok := v.(string)
		if !ok || err != nil {
			return v, err
		}
		switch {
		case c.Binary:
			b := make([]byte, 0, len(s))
			for _, r := range s { // ISO-8859-1 back to bytes
				b = append(b, byte(r))
			}
			return b, nil
		case c.Type == gomysql.MYSQL_TYPE_LONGLONG || c.Type == gomysql.MYSQL_TYPE_BIT:
			return jsonScalar(c, json.RawMessage(s))
		case c.Type == gomysql.MYSQL_TYPE_FLOAT || c.Type == gomysql.MYSQL_TYPE_DOUBLE:
			return jsonScalar(c, json.RawMessage(s))
		}
		return s, nil
	}
	c := event.Change{Namespace: t.Namespace(), Table: t}
	switch m.Type {
	case "INSERT":
		c.Op = event.OpInsert
		return f.images(c, src, nil, data, conv)
	case "DELETE":
		c.Op = event.OpDelete
		return f.images(c, src, data, nil, conv)
	case "UPDATE":
		c.Op = event.OpUpdate
		var old []field
		if len(m.Old) > 0 {
			if old, err = orderedObject(m.Old[0]); err != nil {
				return event.Change{}, src, fmt.Errorf("%w: old: %v", ErrInvalid, err)
			}
		}
		return f.images(c, src, merge(data, old), data, conv)
	}
	return event.Change{}, src, fmt.Errorf("%w: canal type %q is not one of INSERT, UPDATE, DELETE", ErrInvalid, m.Type)
}

// hamalTxn is the _hamal block of Canal and Maxwell messages Hamal
// writes.
type hamalTxn struct {
	ID    string `json:"id"`
	Order int    `json:"order"`
	Total int    `json:"total"`
}

func (h *hamalTxn) fill(src *Source) {
	if h == nil {
		return
	}
	src.Position, src.Index, src.Total = h.ID, h.Order-1, h.Total
	src.Last = h.Total > 0
}

// merge is data with the fields of old replacing its own: the row
// before an update, from Canal's or Maxwell's changed-columns-only old.
func merge(data, old []field) []field {
	out := append([]field(nil), data...)
	for _, o := range old {
		for i := range out {
			if out[i].name == o.name {
				out[i].raw = o.raw
			}
		}
	}
	return out
}

func canalColumn(name, mysqlType string) event.Column {
	c := event.Column{Name: name, Nullable: true}
	t := strings.ToLower(mysqlType)
	base := t
	if i := strings.IndexAny(t, "( "); i >= 0 {
		base = t[:i]
	}
	c.Unsigned = strings.Contains(t, "unsigned")
	switch base {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year":
		c.Type = gomysql.MYSQL_TYPE_LONGLONG
	case "float":
		c.Type = gomysql.MYSQL_TYPE_FLOAT
	case "double", "real":
		c.Type = gomysql.MYSQL_TYPE_DOUBLE
	case "decimal", "numeric":
		c.Type = gomysql.MYSQL_TYPE_NEWDECIMAL
	case "binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob":
		c.Type, c.Binary = gomysql.MYSQL_TYPE_BLOB, true
	case "bit":
		c.Type = gomysql.MYSQL_TYPE_BIT
	default:
		c.Type = gomysql.MYSQL_TYPE_VARCHAR
	}
	return c
}

// maxwell reads a Maxwell row.
func (f *foreignDecoder) maxwell(key, value []byte) (event.Change, Source, error) {
	var m struct {
		Database          string          `json:"database"`
		Table             string          `json:"table"`
		Type              string          `json:"type"`
		Ts                int64           `json:"ts"`
		Data              json.RawMessage `json:"data"`
		Old               json.RawMessage `json:"old"`
		PrimaryKeyColumns []string        `json:"primary_key_columns"`
		SQL               string          `json:"sql"`
		Position          string          `json:"position"`
		Xid               json.Number     `json:"xid"`
		Xoffset           *int            `json:"xoffset"`
		Commit            bool            `json:"commit"`
		Hamal             *hamalTxn       `json:"_hamal"`
	}
	if err := json.Unmarshal(value, &m); err != nil {
		return event.Change{}, Source{}, fmt.Errorf("%w: maxwell row: %v", ErrInvalid, err)
	}
	src := Source{DB: m.Database, Table: m.Table, TsMs: m.Ts * 1000, Position: string(m.Xid), Last: m.Commit}
	if m.Xoffset != nil {
		src.Index = *m.Xoffset
	}
	m.Hamal.fill(&src)
	src.Last = src.Last || src.Total > 0
	keyNames := m.PrimaryKeyColumns
	if len(keyNames) == 0 && key != nil {
		fields, err := orderedObject(key)
		if err != nil {
			return event.Change{}, src, fmt.Errorf("%w: maxwell key: %v", ErrInvalid, err)
		}
		for _, fl := range fields {
			if n, ok := strings.CutPrefix(fl.name, "pk."); ok {
				keyNames = append(keyNames, n)
			}
		}
	}
	data, err := orderedObject(m.Data)
	if err != nil {
		return event.Change{}, src, fmt.Errorf("%w: data: %v", ErrInvalid, err)
	}
	c := event.Change{}
	switch m.Type {
	case "insert", "bootstrap-insert":
		c.Op = event.OpInsert
	case "update":
		c.Op = event.OpUpdate
	case "delete":
		c.Op = event.OpDelete
	default:
		if strings.HasPrefix(m.Type, "table-") || strings.HasPrefix(m.Type, "database-") {
			return event.Change{}, src, fmt.Errorf("%w: %q: Hamal does not apply DDL read from Kafka; apply it to the target by hand", ErrDDL, m.SQL)
		}
		return event.Change{}, src, fmt.Errorf("%w: maxwell type %q is not one of insert, update, delete", ErrInvalid, m.Type)
	}
	t, err := f.table(m.Database, m.Table, data, keyNames, func(name string, raw json.RawMessage) event.Column {
		return event.Column{Name: name, Type: jsonColumnType(raw), Nullable: true}
	})
	if err != nil {
		return event.Change{}, src, err
	}
	c.Namespace, c.Table = t.Namespace(), t
	conv := func(c event.Column, raw json.RawMessage) (any, error) { return jsonScalar(c, raw) }
	switch c.Op {
	case event.OpInsert:
		return f.images(c, src, nil, data, conv)
	case event.OpDelete:
		return f.images(c, src, data, nil, conv)
	}
	old, err := orderedObject(m.Old)
	if err != nil {
		return event.Change{}, src, fmt.Errorf("%w: old: %v", ErrInvalid, err)
	}
	return f.images(c, src, merge(data, old), data, conv)
}
