package mysql

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
)

// textAt returns row[i] as text ("" when absent or not text).
func textAt(row []any, i int) string {
	if i < 0 || i >= len(row) {
		return ""
	}
	switch v := row[i].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

func (r *Reader) rows(h *replication.EventHeader, e *replication.RowsEvent) error {
	ent := r.tables[e.TableID]
	if ent == nil {
		return fmt.Errorf("rows event at %s:%d for table id %d without a table map", r.file, h.LogPos, e.TableID)
	}
	if !r.grp.started {
		r.grp = group{started: true, startPos: r.position()}
	}
	if ent.filtered {
		r.noteHeartbeatRows(ent, e)
		if ent.originCol >= 0 && e.Type() != replication.EnumRowsEventTypeDelete && len(e.Rows) > 0 {
			// The after-image of the last row: the marker as this
			// transaction left it.
			row := e.Rows[len(e.Rows)-1]
			r.grp.origin = textAt(row, ent.originCol)
			r.grp.path = loopguard.ParsePath(textAt(row, ent.pathCol))
		}
		return nil
	}
	tbl := ent.table
	if h.EventType == replication.PARTIAL_UPDATE_ROWS_EVENT {
		return fmt.Errorf("table %s: partial JSON update in the binlog; SET GLOBAL binlog_row_value_options='' and restart writers", tbl.Namespace())
	}
	for _, skipped := range e.SkippedColumns {
		if len(skipped) > 0 {
			return fmt.Errorf("table %s: row image without all columns at %s:%d (a session wrote with binlog_row_image other than FULL); "+
				"SET GLOBAL binlog_row_image=FULL and in my.cnf, restart writers", tbl.Namespace(), r.file, h.LogPos)
		}
	}
	for _, row := range e.Rows {
		if len(row) != len(tbl.Columns) {
			return fmt.Errorf("table %s: row has %d values for %d columns at %s:%d", tbl.Namespace(), len(row), len(tbl.Columns), r.file, h.LogPos)
		}
	}
	ns := tbl.Namespace()
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for _, row := range e.Rows {
			r.grp.changes = append(r.grp.changes, event.Change{Op: event.OpInsert, Namespace: ns, Table: tbl, After: row})
		}
	case replication.EnumRowsEventTypeDelete:
		for _, row := range e.Rows {
			r.grp.changes = append(r.grp.changes, event.Change{Op: event.OpDelete, Namespace: ns, Table: tbl, Before: row})
		}
	case replication.EnumRowsEventTypeUpdate:
		if len(e.Rows)%2 != 0 {
			return fmt.Errorf("table %s: update event with an odd number of row images at %s:%d", ns, r.file, h.LogPos)
		}
		for i := 0; i < len(e.Rows); i += 2 {
			r.grp.changes = append(r.grp.changes, event.Change{Op: event.OpUpdate, Namespace: ns, Table: tbl, Before: e.Rows[i], After: e.Rows[i+1]})
		}
	default:
		return fmt.Errorf("table %s: unknown rows event %s at %s:%d", ns, h.EventType, r.file, h.LogPos)
	}
	return nil
}
