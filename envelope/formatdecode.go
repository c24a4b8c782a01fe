package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
