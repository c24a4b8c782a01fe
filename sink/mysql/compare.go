package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
)

// RowState is how the target holds a row that the source has.
type RowState struct {
	Present bool   // the target has a row with this key
	Same    bool   // ... equal to the image, column by column (as the sink compares)
	Image   string // the target's row as JSON; "" when absent
}

// CompareRow reports how the target holds the row of tbl whose key image
// carries (for a deleted row, its before-image: Same is then !Present). It
// reads only, on a pooled connection, and works on a sink opened with
// SkipLease.
func (s *Sink) CompareRow(ctx context.Context, tbl *event.Table, image []any, deleted bool) (RowState, error) {
	slot, err := s.acquire(ctx)
	if err != nil {
		return RowState{}, err
	}
	defer s.release(slot)
	if err := s.connect(ctx, slot); err != nil {
		return RowState{}, err
	}
	p, err := s.plan(slot, tbl)
	if err != nil {
		return RowState{}, err
	}
	if p.keyless {
		return RowState{}, fmt.Errorf("table %s has no row key: rows cannot be compared by key", p.ns)
	}
	if len(image) != len(p.cols) {
		return RowState{}, fmt.Errorf("table %s: image has %d values for %d columns", p.ns, len(image), len(p.cols))
	}
	b := []byte("SELECT (")
	if b, err = p.appendMatch(b, image, true); err != nil {
		return RowState{}, err
	}
	b = append(b, "), "...)
	b = p.appendJSONObject(b)
	b = append(b, " FROM "...)
	b = append(b, p.quotedTable()...)
	b = append(b, " WHERE "...)
	if b, err = p.appendKeyMatch(b, image); err != nil {
		return RowState{}, err
	}
	r, err := slot.c.Execute(string(b))
	if err == nil {
		_, err = slot.c.Execute("ROLLBACK") // end the read's transaction
	}
	if err != nil {
		if classify(err) != classFatal {
			s.drop(slot)
			return RowState{}, retry.Transient(err)
		}
		return RowState{}, fmt.Errorf("compare a row of %s: %w", p.ns, err)
	}
	if len(r.Values) == 0 {
		return RowState{Same: deleted}, nil
	}
	same, _ := r.GetInt(0, 0)
	img, _ := r.GetString(0, 1)
	return RowState{Present: true, Same: !deleted && same == 1, Image: img}, nil
}

// quotedTable is the table's name as the statements write it, kept when
// the plan is built: a name may hold anything, " (" included.
func (p *tablePlan) quotedTable() string { return p.quotedName }

// appendJSONObject appends JSON_OBJECT('c1', c1, …) of the row, for
// reports: text as the server converts it to utf8mb4, binary columns as
// {"base64": "…"} (the form of imageJSON), BIT as its number.
func (p *tablePlan) appendJSONObject(b []byte) []byte {
	b = append(b, "JSON_OBJECT("...)
	for i := range p.cols {
		cp := &p.cols[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, strings.ReplaceAll(strings.Trim(cp.quotedName, "`"), "``", "`"))
		b = append(b, ',')
		switch cp.kind {
		case kindBinary:
			b = append(b, "IF("...)
			b = append(b, cp.quotedName...)
			b = append(b, " IS NULL,NULL,JSON_OBJECT('base64',REPLACE(TO_BASE64("...)
			b = append(b, cp.quotedName...)
			b = append(b, "),CHAR(10),'')))"...)
		case kindBits: // BIT values are bytes, not text: show the number
			b = append(b, cp.quotedName...)
			b = append(b, "+0"...)
		default:
			b = append(b, cp.quotedName...)
		}
	}
	return append(b, ')')
}
