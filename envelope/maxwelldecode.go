package envelope

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hamal-replication/hamal/event"
)

// Decoding Maxwell's row messages.

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
