package envelope

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// canalEncoder writes Canal's flat message (canal.mq.flatMessage=true),
// one row per message: {data, database, es, id, isDdl, mysqlType, old,
// pkNames, sql, sqlType, table, ts, type}. Every value is a string (NULL
// null); old holds, for an update, the changed columns' previous values.
type canalEncoder struct {
	meta  Meta
	types sync.Map // *event.Table → []byte: the mysqlType and sqlType objects
}

// typeFields are the table's `"mysqlType":{…}` … `"sqlType":{…}` parts,
// written once per table description.
func (e *canalEncoder) typeFields(t *event.Table) [2][]byte {
	if v, ok := e.types.Load(t); ok {
		return v.([2][]byte)
	}
	var mt, st []byte
	mt = append(mt, '{')
	st = append(st, '{')
	for i, c := range t.Columns {
		if i > 0 {
			mt, st = append(mt, ','), append(st, ',')
		}
		mt = appendString(mt, c.Name)
		mt = append(mt, ':')
		mt = appendString(mt, mysqlTypeName(c))
		st = appendString(st, c.Name)
		st = append(st, ':')
		st = strconv.AppendInt(st, int64(jdbcType(c)), 10)
	}
	v := [2][]byte{append(mt, '}'), append(st, '}')}
	e.types.Store(t, v)
	return v
}

func (e *canalEncoder) Encode(txn *event.Txn, now time.Time) ([]Message, error) {
	rs, err := rows(txn)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(rs))
	for _, r := range rs {
		m := Message{Schema: r.table.Schema, Table: r.table.Name}
		image := r.after
		if image == nil {
			image = r.before
		}
		m.Key, m.PartitionKey = rowKeys(r.table, image)
		if m.Value, err = e.value(txn, r, image, now); err != nil {
			return nil, fmt.Errorf("change of %s at %s: %w", r.table.Namespace(), txn.Pos, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func (e *canalEncoder) value(txn *event.Txn, r row, image []any, now time.Time) ([]byte, error) {
	t := r.table
	b := make([]byte, 0, 256+96*len(t.Columns))
	b = append(b, `{"data":[`...)
	var err error
	if b, err = canalImage(b, t, image, nil); err != nil {
		return nil, err
	}
	b = append(b, `],"database":`...)
	b = appendString(b, t.Schema)
	b = append(b, `,"es":`...)
	b = strconv.AppendInt(b, millis(txn.CommitTime), 10)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, txnID(txn), 10)
	types := e.typeFields(t)
	b = append(b, `,"isDdl":false,"mysqlType":`...)
	b = append(b, types[0]...)
	b = append(b, `,"old":`...)
	if r.op == OpUpdate {
		b = append(b, '[')
		if b, err = canalImage(b, t, r.before, changedColumns(t, r.before, r.after)); err != nil {
			return nil, err
		}
		b = append(b, ']')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"pkNames":`...)
	if len(t.PrimaryKey) > 0 {
		b = appendNames(b, t, t.PrimaryKey)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"sql":"","sqlType":`...)
	b = append(b, types[1]...)
	b = append(b, `,"table":`...)
	b = appendString(b, t.Name)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, millis(now), 10)
	b = append(b, `,"type":"`...)
	switch r.op {
	case OpCreate:
		b = append(b, "INSERT"...)
	case OpUpdate:
		b = append(b, "UPDATE"...)
	default:
		b = append(b, "DELETE"...)
	}
	b = append(b, `","_hamal":`...)
	b = appendHamalTxn(b, txn, r.index, 0)
	return append(b, '}'), nil
}

// canalImage writes a row as {column: string…}; only is the columns to
// write (nil: all).
func canalImage(b []byte, t *event.Table, image []any, only []int) ([]byte, error) {
	b = append(b, '{')
	write := func(n, i int) error {
		if n > 0 {
			b = append(b, ',')
		}
		c := t.Columns[i]
		b = appendString(b, c.Name)
		b = append(b, ':')
		if image[i] == nil {
			b = append(b, "null"...)
			return nil
		}
		s, err := stringValue(c, image[i])
		if err != nil {
			return fmt.Errorf("column %s: %w", c.Name, err)
		}
		b = appendString(b, s)
		return nil
	}
	if only == nil {
		for i := range t.Columns {
			if err := write(i, i); err != nil {
				return nil, err
			}
		}
	} else {
		for n, i := range only {
			if err := write(n, i); err != nil {
				return nil, err
			}
		}
	}
	return append(b, '}'), nil
}

// txnID is a number naming the source transaction, equal for every
// message of it and across replays: FNV-1a of its position, 53 bits so
// JSON readers keep it exact.
func txnID(txn *event.Txn) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(txn.Pos)
	return h.Sum64() & (1<<53 - 1)
}

// appendHamalTxn writes Hamal's transaction block, which the Canal and
// Maxwell messages carry beside their own fields (consumers ignore
// unknown fields): {"id": position, "order": 1-based, "total": on the
// last message only, "channel", "site", "origin"}.
func appendHamalTxn(b []byte, txn *event.Txn, index, total int) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, string(txn.Pos))
	b = append(b, `,"order":`...)
	b = strconv.AppendInt(b, int64(index+1), 10)
	if total > 0 && index == total-1 && !txn.Partial {
		b = append(b, `,"total":`...)
		b = strconv.AppendInt(b, int64(total), 10)
	}
	return append(b, '}')
}

// maxwellEncoder writes Maxwell's JSON: {database, table, type, ts, xid,
// commit (on the transaction's last row) or xoffset, data, old}, the key
// {"database","table","pk.<col>"…}. Values: numbers for integers, FLOAT,
// DOUBLE and DECIMAL; DATE, TIME, DATETIME and TIMESTAMP (UTC) as
// MySQL's text; ENUM a string; SET an array of strings; BLOB and binary
// strings base64; BIT an integer.
type maxwellEncoder struct{ meta Meta }

func (e maxwellEncoder) Encode(txn *event.Txn, now time.Time) ([]Message, error) {
	rs, err := rows(txn)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(rs))
	for _, r := range rs {
		m := Message{Schema: r.table.Schema, Table: r.table.Name}
		image := r.after
		if image == nil {
			image = r.before
		}
		_, m.PartitionKey = rowKeys(r.table, image)
		if m.Key, err = maxwellKey(r.table, image); err != nil {
			return nil, fmt.Errorf("change of %s at %s: %w", r.table.Namespace(), txn.Pos, err)
		}
		if m.Value, err = e.value(txn, r, image, len(rs)); err != nil {
			return nil, fmt.Errorf("change of %s at %s: %w", r.table.Namespace(), txn.Pos, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func maxwellKey(t *event.Table, image []any) ([]byte, error) {
	b := append([]byte(nil), `{"database":`...)
	b = appendString(b, t.Schema)
	b = append(b, `,"table":`...)
	b = appendString(b, t.Name)
	cols, _ := t.RowKey()
	for _, ci := range cols {
		b = append(b, ',')
		b = appendString(b, "pk."+strings.ToLower(t.Columns[ci].Name))
		b = append(b, ':')
		var err error
		if b, err = maxwellValue(b, t.Columns[ci], image[ci]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func (e maxwellEncoder) value(txn *event.Txn, r row, image []any, total int) ([]byte, error) {
	t := r.table
	b := make([]byte, 0, 256+48*len(t.Columns))
	b = append(b, `{"database":`...)
	b = appendString(b, t.Schema)
	b = append(b, `,"table":`...)
	b = appendString(b, t.Name)
	b = append(b, `,"type":"`...)
	switch r.op {
	case OpCreate:
		b = append(b, "insert"...)
	case OpUpdate:
		b = append(b, "update"...)
	default:
		b = append(b, "delete"...)
	}
	b = append(b, `","ts":`...)
	ts := int64(0)
	if !txn.CommitTime.IsZero() {
		ts = txn.CommitTime.Unix()
	}
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"xid":`...)
	b = strconv.AppendUint(b, txnID(txn), 10)
	if r.index == total-1 && !txn.Partial {
		b = append(b, `,"commit":true`...)
	} else {
		b = append(b, `,"xoffset":`...)
		b = strconv.AppendInt(b, int64(r.index), 10)
	}
	b = append(b, `,"position":`...)
	b = appendString(b, string(txn.Pos))
	b = append(b, `,"data":`...)
	var err error
	if b, err = maxwellImage(b, t, image, nil); err != nil {
		return nil, err
	}
	if r.op == OpUpdate {
		b = append(b, `,"old":`...)
		if b, err = maxwellImage(b, t, r.before, changedColumns(t, r.before, r.after)); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"_hamal":`...)
	b = appendHamalTxn(b, txn, r.index, total)
	return append(b, '}'), nil
}

func maxwellImage(b []byte, t *event.Table, image []any, only []int) ([]byte, error) {
	b = append(b, '{')
	idx := only
	if idx == nil {
		idx = make([]int, len(t.Columns))
		for i := range idx {
			idx[i] = i
		}
	}
	for n, i := range idx {
		if n > 0 {
			b = append(b, ',')
		}
		c := t.Columns[i]
		b = appendString(b, c.Name)
		b = append(b, ':')
		var err error
		if b, err = maxwellValue(b, c, image[i]); err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
	}
	return append(b, '}'), nil
}

func maxwellValue(b []byte, c event.Column, v any) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	s, isText := rawOf(v)
	switch c.Type {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG,
		gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_YEAR:
		return appendInteger(b, v)
	case gomysql.MYSQL_TYPE_BIT:
		i, u, isUint, ok := integer(v)
		if !ok {
			return nil, fmt.Errorf("BIT value %v (%T)", v, v)
		}
		if isUint {
			return strconv.AppendUint(b, u, 10), nil
		}
		return strconv.AppendUint(b, uint64(i), 10), nil
	case gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE:
		return appendFloat(b, c, v)
	case gomysql.MYSQL_TYPE_DECIMAL, gomysql.MYSQL_TYPE_NEWDECIMAL:
		if _, _, err := unscaled(s); err != nil || !isText {
			return nil, fmt.Errorf("DECIMAL %v is not a number", v)
		}
		return append(b, s...), nil // a JSON number with every digit
	case gomysql.MYSQL_TYPE_ENUM:
		return appendString(b, enumName(c, v)), nil
	case gomysql.MYSQL_TYPE_SET:
		b = append(b, '[')
		for i, n := range setNames(c, v) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, n)
		}
		return append(b, ']'), nil
	}
	if isText {
		if c.Binary || c.Type == gomysql.MYSQL_TYPE_GEOMETRY {
			return appendBase64(b, s), nil
		}
		return appendString(b, text(s)), nil
	}
	return appendValue(b, c, v)
}
