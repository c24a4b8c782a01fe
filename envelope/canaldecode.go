package envelope

import (
	"encoding/json"
	"fmt"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// Decoding Canal's flat messages.

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
