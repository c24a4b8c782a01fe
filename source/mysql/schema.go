package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
)

type tableEntry struct {
	tm       *replication.TableMapEvent
	table    *event.Table // nil when filtered
	filtered bool
	// Columns "origin" and "path" of the origin marker table, else -1.
	originCol, pathCol int
	// heartbeatCol is 1 + column "ts" of hamal.heartbeat; 0 for any other
	// table (see heartbeat.go).
	heartbeatCol int
}

type indexDef struct {
	name    string
	columns []string
}

// invalidateSchema drops cached table metadata and unique keys after a
// DDL, so the next row event re-reads information_schema.
func (r *Reader) invalidateSchema() {
	clear(r.tables)
	clear(r.uniqueKeys)
}

func (r *Reader) tableMap(e *replication.TableMapEvent) error {
	if ent := r.tables[e.TableID]; ent != nil && sameTableMap(ent.tm, e) {
		return nil
	}
	schema, name := string(e.Schema), string(e.Table)
	ent := &tableEntry{tm: e, originCol: -1, pathCol: -1}
	if !r.filter.matchTable(schema, name) {
		ent.filtered = true
		if strings.ToLower(schema) == r.filter.hamal && name == "origin_marker" {
			for i, c := range e.ColumnNameString() {
				switch c {
				case "origin":
					ent.originCol = i
				case "path":
					ent.pathCol = i
				}
			}
		}
		noteHeartbeatTable(ent, r.filter.hamal, schema, name)
		r.tables[e.TableID] = ent
		return nil
	}
	tbl, err := r.buildTable(e)
	if err != nil {
		return err
	}
	ent.table = tbl
	r.tables[e.TableID] = ent
	return nil
}

// buildTable turns a table map into an immutable event.Table.
func (r *Reader) buildTable(e *replication.TableMapEvent) (*event.Table, error) {
	schema, name := string(e.Schema), string(e.Table)
	names := e.ColumnNameString()
	if len(names) != int(e.ColumnCount) {
		return nil, fmt.Errorf("table %s.%s: the binlog carries no column names (binlog_row_metadata is not FULL when it was written); "+
			"SET GLOBAL binlog_row_metadata=FULL and binlog_row_metadata=FULL in my.cnf, restart writers, then re-seed from a position written with it",
			schema, name)
	}
	unsigned := e.UnsignedMap()
	collations := e.CollationMap()
	tbl := &event.Table{Schema: schema, Name: name, Columns: make([]event.Column, e.ColumnCount)}
	enums, sets := e.EnumStrValueString(), e.SetStrValueString()
	enumAt, setAt := 0, 0
	for i := range tbl.Columns {
		typ := e.ColumnType[i]
		if typ == gomysql.MYSQL_TYPE_STRING {
			if real := byte(e.ColumnMeta[i] >> 8); real == gomysql.MYSQL_TYPE_ENUM || real == gomysql.MYSQL_TYPE_SET {
				typ = real
			}
		}
		_, nullable := e.Nullable(i)
		tbl.Columns[i] = event.Column{
			Name:     names[i],
			Type:     typ,
			Unsigned: unsigned[i],
			Binary:   collations[i] == 63 || typ == gomysql.MYSQL_TYPE_GEOMETRY,
			Nullable: nullable,
			Meta:     e.ColumnMeta[i],
		}
		switch {
		case e.IsEnumColumn(i):
			if enumAt < len(enums) {
				tbl.Columns[i].Members = enums[enumAt]
			}
			enumAt++
		case e.IsSetColumn(i):
			if setAt < len(sets) {
				tbl.Columns[i].Members = sets[setAt]
			}
			setAt++
		}
	}
	for _, c := range e.PrimaryKey {
		tbl.PrimaryKey = append(tbl.PrimaryKey, int(c))
	}
	defs, err := r.loadUniqueKeys(schema, name)
	if err != nil {
		return nil, err
	}
	index := make(map[string]int, len(names))
	for i, n := range names {
		index[strings.ToLower(n)] = i
	}
defs:
	for _, d := range defs {
		uk := event.UniqueKey{Name: d.name}
		for _, c := range d.columns {
			i, ok := index[strings.ToLower(c)]
			if !ok {
				// The table changed since this event was written;
				// information_schema only knows the current shape.
				r.log.Warn("unique key column not in binlog table map; key ignored", "table", schema+"."+name, "key", d.name, "column", c)
				continue defs
			}
			uk.Columns = append(uk.Columns, i)
		}
		tbl.UniqueKeys = append(tbl.UniqueKeys, uk)
	}
	return tbl, nil
}

// loadUniqueKeys reads the table's unique keys other than the primary key
// from information_schema, cached until the next DDL. Prefix indexes are
// left out: a conflict key over the full value would not match the
// index's notion of equality.
func (r *Reader) loadUniqueKeys(schema, name string) ([]indexDef, error) {
	key := schema + "." + name
	if defs, ok := r.uniqueKeys[key]; ok {
		return defs, nil
	}
	r.metaMu.Lock()
	defer r.metaMu.Unlock()
	select {
	case <-r.closed:
		return nil, ErrClosed
	default:
	}
	q := fmt.Sprintf(`SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY'
		ORDER BY INDEX_NAME, SEQ_IN_INDEX`, quoteString(schema), quoteString(name))
	var res *gomysql.Result
	var err error
	// Two attempts: the idle metadata connection may have been closed by
	// the server (wait_timeout) since the last DDL.
	for attempt := 0; attempt < 2; attempt++ {
		if r.meta == nil {
			ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
			conn, cerr := connect(ctx, r.cfg)
			cancel()
			if cerr != nil {
				return nil, retry.Transient(fmt.Errorf("connect for table metadata: %w", cerr))
			}
			r.meta = conn
		}
		res, err = r.meta.Execute(q)
		if err == nil {
			break
		}
		var myErr *gomysql.MyError
		if errors.As(err, &myErr) {
			return nil, fmt.Errorf("read unique keys of %s: %w", key, err)
		}
		r.meta.Close()
		r.meta = nil
	}
	if err != nil {
		return nil, retry.Transient(fmt.Errorf("read unique keys of %s: %w", key, err))
	}
	var defs []indexDef
	prefix := map[string]bool{}
	for i := 0; i < res.RowNumber(); i++ {
		idx, _ := res.GetString(i, 0)
		col, _ := res.GetString(i, 1)
		if null, _ := res.IsNull(i, 2); !null {
			prefix[idx] = true
		}
		if len(defs) == 0 || defs[len(defs)-1].name != idx {
			defs = append(defs, indexDef{name: idx})
		}
		defs[len(defs)-1].columns = append(defs[len(defs)-1].columns, col)
	}
	kept := defs[:0]
	for _, d := range defs {
		if !prefix[d.name] {
			kept = append(kept, d)
		}
	}
	r.uniqueKeys[key] = kept
	return kept, nil
}

// sameTableMap reports whether two table maps describe the same table
// shape, so the event.Table built for the first can be reused.
func sameTableMap(a, b *replication.TableMapEvent) bool {
	if a.TableID != b.TableID || !bytes.Equal(a.Schema, b.Schema) || !bytes.Equal(a.Table, b.Table) ||
		a.ColumnCount != b.ColumnCount || !bytes.Equal(a.ColumnType, b.ColumnType) ||
		!bytes.Equal(a.NullBitmap, b.NullBitmap) || !bytes.Equal(a.SignednessBitmap, b.SignednessBitmap) ||
		len(a.ColumnMeta) != len(b.ColumnMeta) || len(a.ColumnName) != len(b.ColumnName) ||
		len(a.PrimaryKey) != len(b.PrimaryKey) || len(a.DefaultCharset) != len(b.DefaultCharset) ||
		len(a.ColumnCharset) != len(b.ColumnCharset) {
		return false
	}
	for i := range a.ColumnMeta {
		if a.ColumnMeta[i] != b.ColumnMeta[i] {
			return false
		}
	}
	for i := range a.ColumnName {
		if !bytes.Equal(a.ColumnName[i], b.ColumnName[i]) {
			return false
		}
	}
	for i := range a.PrimaryKey {
		if a.PrimaryKey[i] != b.PrimaryKey[i] {
			return false
		}
	}
	for i := range a.DefaultCharset {
		if a.DefaultCharset[i] != b.DefaultCharset[i] {
			return false
		}
	}
	for i := range a.ColumnCharset {
		if a.ColumnCharset[i] != b.ColumnCharset[i] {
			return false
		}
	}
	return true
}
