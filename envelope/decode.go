package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// Source is the envelope's "source" block.
type Source struct {
	Channel  string `json:"channel"`
	Site     string `json:"site"`
	Origin   string `json:"origin"`
	DB       string `json:"db"`
	Table    string `json:"table"`
	Position string `json:"position"`
	Seq      uint64 `json:"seq"`
	Index    int    `json:"index"`
	// Total is the number of messages of the source transaction, on its
	// last message only (0 elsewhere, and on every chunk of a huge
	// transaction but the last).
	Total int   `json:"total"`
	TsMs  int64 `json:"ts_ms"`
	// Last is set on the message that ends its source transaction (Total
	// set, or Maxwell's commit: true).
	Last bool `json:"-"`
}

// CommitTime is the source commit time, or zero when unknown.
func (s Source) CommitTime() time.Time {
	if s.TsMs == 0 {
		return time.Time{}
	}
	return time.UnixMilli(s.TsMs)
}

// TxnOrigin is the site that first wrote the change: the origin the
// writing channel saw, or else that channel's own source site.
func (s Source) TxnOrigin() string {
	if s.Origin != "" {
		return s.Origin
	}
	return s.Site
}

type wireEnvelope struct {
	Op     string          `json:"op"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Source Source          `json:"source"`
	TsMs   int64           `json:"ts_ms"`
	Schema json.RawMessage `json:"schema"`
}

type wireSchema struct {
	Columns []struct {
		Name     string `json:"name"`
		Type     *int   `json:"type"`
		Unsigned bool   `json:"unsigned"`
		Binary   bool   `json:"binary"`
		Nullable bool   `json:"nullable"`
	} `json:"columns"`
	PrimaryKey []string `json:"primary_key"`
	UniqueKeys []struct {
		Name    string   `json:"name"`
		Columns []string `json:"columns"`
	} `json:"unique_keys"`
}

// ErrInvalid marks an envelope that cannot be decoded: not Hamal's
// format, or damaged.
var ErrInvalid = errors.New("invalid envelope")

// ErrDDL marks a schema-change envelope given to Decode.
var ErrDDL = errors.New("DDL envelope")

// Decoder turns envelopes back into changes. It caches table descriptions
// so that changes of one table share one *event.Table (sinks cache their
// plans by that pointer). A Decoder is not safe for concurrent use.
type Decoder struct {
	tables map[string]*event.Table
}

// NewDecoder returns a Decoder with an empty table cache.
func NewDecoder() *Decoder { return &Decoder{tables: map[string]*event.Table{}} }

// Decode parses one envelope into a change and its source block. Errors
// wrap ErrInvalid and say what is wrong.
func (d *Decoder) Decode(value []byte) (event.Change, Source, error) {
	var w wireEnvelope
	if err := json.Unmarshal(value, &w); err != nil {
		return event.Change{}, Source{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if w.Op == OpDDL {
		return event.Change{}, w.Source, fmt.Errorf("%w at source position %s: Hamal does not apply DDL read from Kafka; apply it to the target by hand and leave the DDL topic out of the source's topics", ErrDDL, w.Source.Position)
	}
	if w.Source.DB == "" || w.Source.Table == "" {
		return event.Change{}, w.Source, fmt.Errorf("%w: source.db and source.table are required", ErrInvalid)
	}
	t, err := d.table(w.Source.DB, w.Source.Table, w.Schema)
	if err != nil {
		return event.Change{}, w.Source, err
	}
	c := event.Change{Namespace: t.Namespace(), Table: t}
	switch w.Op {
	case OpCreate, OpSnapshot:
		c.Op = event.OpInsert
	case OpUpdate:
		c.Op = event.OpUpdate
	case OpDelete:
		c.Op = event.OpDelete
	default:
		return event.Change{}, w.Source, fmt.Errorf("%w: op %q is not one of c, u, d, r", ErrInvalid, w.Op)
	}
	if c.Op != event.OpInsert {
		if c.Before, err = decodeImage(t, w.Before); err != nil {
			return event.Change{}, w.Source, fmt.Errorf("%w: before: %v", ErrInvalid, err)
		}
		if c.Before == nil {
			return event.Change{}, w.Source, fmt.Errorf("%w: op %q needs a before image", ErrInvalid, w.Op)
		}
	}
	if c.Op != event.OpDelete {
		if c.After, err = decodeImage(t, w.After); err != nil {
			return event.Change{}, w.Source, fmt.Errorf("%w: after: %v", ErrInvalid, err)
		}
		if c.After == nil {
			return event.Change{}, w.Source, fmt.Errorf("%w: op %q needs an after image", ErrInvalid, w.Op)
		}
	}
	w.Source.Last = w.Source.Total > 0
	return c, w.Source, nil
}

func (d *Decoder) table(db, name string, schema json.RawMessage) (*event.Table, error) {
	cacheKey := db + "\x00" + name + "\x00" + string(schema)
	if t, ok := d.tables[cacheKey]; ok {
		return t, nil
	}
	var s wireSchema
	if err := json.Unmarshal(schema, &s); err != nil || len(s.Columns) == 0 {
		return nil, fmt.Errorf("%w: schema of %s.%s is missing or malformed", ErrInvalid, db, name)
	}
	t := &event.Table{Schema: db, Name: name, Columns: make([]event.Column, len(s.Columns))}
	index := make(map[string]int, len(s.Columns))
	for i, c := range s.Columns {
		if c.Name == "" || c.Type == nil || *c.Type < 0 || *c.Type > 255 {
			return nil, fmt.Errorf("%w: schema of %s.%s: column %d needs a name and a type code", ErrInvalid, db, name, i)
		}
		if _, dup := index[c.Name]; dup {
			return nil, fmt.Errorf("%w: schema of %s.%s: column %s appears twice", ErrInvalid, db, name, c.Name)
		}
		index[c.Name] = i
		t.Columns[i] = event.Column{Name: c.Name, Type: byte(*c.Type), Unsigned: c.Unsigned, Binary: c.Binary, Nullable: c.Nullable}
	}
	resolve := func(names []string) ([]int, error) {
		cols := make([]int, len(names))
		for i, n := range names {
			ci, ok := index[n]
			if !ok {
				return nil, fmt.Errorf("%w: schema of %s.%s: key column %q is not a column", ErrInvalid, db, name, n)
			}
			cols[i] = ci
		}
		return cols, nil
	}
	var err error
	if t.PrimaryKey, err = resolve(s.PrimaryKey); err != nil {
		return nil, err
	}
	if len(t.PrimaryKey) == 0 {
		t.PrimaryKey = nil
	}
	for _, uk := range s.UniqueKeys {
		cols, err := resolve(uk.Columns)
		if err != nil {
			return nil, err
		}
		t.UniqueKeys = append(t.UniqueKeys, event.UniqueKey{Name: uk.Name, Columns: cols})
	}
	if len(d.tables) >= 4096 { // bound the cache across schema changes
		clear(d.tables)
	}
	d.tables[cacheKey] = t
	return t, nil
}

// decodeImage reads a row image object into values in column order. null
// gives a nil image. Every column must be present.
func decodeImage(t *event.Table, raw json.RawMessage) ([]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	image := make([]any, len(t.Columns))
	for i, c := range t.Columns {
		f, ok := fields[c.Name]
		if !ok {
			return nil, fmt.Errorf("column %s is missing", c.Name)
		}
		v, err := decodeValue(c, f)
		if err != nil {
			return nil, fmt.Errorf("column %s: %v", c.Name, err)
		}
		image[i] = v
	}
	if len(fields) != len(t.Columns) {
		return nil, fmt.Errorf("image has %d fields for %d columns", len(fields), len(t.Columns))
	}
	return image, nil
}

// decodeValue reverses appendValue: null → nil; a string → string;
// {"base64":…} → []byte; a number → float32 (FLOAT), float64 (DOUBLE),
// else int64, or uint64 above the int64 range.
func decodeValue(c event.Column, raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("empty value")
	}
	switch raw[0] {
	case 'n':
		if string(raw) != "null" {
			return nil, fmt.Errorf("bad value %s", raw)
		}
		return nil, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return s, nil
	case '{':
		var o struct {
			Base64 *string `json:"base64"`
		}
		if err := json.Unmarshal(raw, &o); err != nil || o.Base64 == nil {
			return nil, fmt.Errorf("object value %s is not {\"base64\":…}", raw)
		}
		b, err := base64.StdEncoding.DecodeString(*o.Base64)
		if err != nil {
			return nil, fmt.Errorf("base64: %v", err)
		}
		return b, nil
	}
	s := string(raw)
	switch c.Type {
	case gomysql.MYSQL_TYPE_FLOAT:
		f, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return nil, fmt.Errorf("bad FLOAT %s", s)
		}
		return float32(f), nil
	case gomysql.MYSQL_TYPE_DOUBLE:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("bad DOUBLE %s", s)
		}
		return f, nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	return nil, fmt.Errorf("bad integer %s", s)
}
