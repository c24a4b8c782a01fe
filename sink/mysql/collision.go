package mysql

import (
	"fmt"
	"strconv"
	"strings"
)

// Unique collisions (multi-site, Config.Site set). An incoming row whose
// unique value (a unique key other than the row key) is held on the
// target by a different row that the batch does not rewrite would make
// REPLACE delete that row without a word. With sites set that is a
// conflict between two sites: it is recorded in <hamal>.conflicts with
// kind unique-collision and both images, and resolved by the table's
// policy (source-wins: the incoming row is written and the target's row
// goes; target-wins: the incoming row is not written; last-writer-wins:
// the greater policy column wins, a tie to the greater site). A replay
// (the fence knows the change) is not a collision. One-way channels keep
// REPLACE's semantics.

// detectCollisions checks the non-delete entries ids of group g for
// unique collisions with target rows outside the group.
func (a *applier) detectCollisions(g *rowGroup, ids []int32) error {
	p := g.plan
	if len(p.uniques) == 0 {
		return nil
	}
	var cand []int32
	for _, idx := range ids {
		if e := &a.st.entries[idx]; !e.del && !e.skip && e.image != nil {
			cand = append(cand, idx)
		}
	}
	if len(cand) == 0 {
		return nil
	}
	b := []byte("SELECT CASE")
	match := func(b []byte, e *rowEntry) ([]byte, bool, error) {
		some := false
		var err error
		b = append(b, '(')
		for _, uk := range p.uniques {
			null := false
			for _, c := range uk {
				if e.image[c] == nil {
					null = true // NULL never collides
				}
			}
			if null {
				continue
			}
			if some {
				b = append(b, " OR "...)
			}
			some = true
			b = append(b, '(')
			for j, c := range uk {
				if j > 0 {
					b = append(b, " AND "...)
				}
				b = append(b, p.cols[c].quotedName...)
				b = append(b, '=')
				if b, err = appendLiteral(b, e.image[c], &p.cols[c], true); err != nil {
					return b, false, err
				}
			}
			b = append(b, ')')
		}
		if !some {
			b = append(b, '0')
		}
		return append(b, ')'), some, nil
	}
	var err error
	var where []byte
	n := 0
	for i, idx := range cand {
		e := &a.st.entries[idx]
		var m []byte
		var ok bool
		if m, ok, err = match(nil, e); err != nil {
			return &stmtError{table: p.ns, err: err}
		}
		if !ok {
			continue
		}
		n++
		b = append(b, " WHEN "...)
		b = append(b, m...)
		b = append(b, " THEN "...)
		b = strconv.AppendInt(b, int64(i)*4, 10)
		if k := p.conflict.column; k >= 0 && p.conflict.rule.Policy == LastWriterWins {
			cp := &p.cols[k]
			b = append(b, "+2*IFNULL("...)
			b = append(b, cp.quotedName...)
			b = append(b, '>')
			if b, err = appendLiteral(b, e.image[k], cp, true); err != nil {
				return &stmtError{table: p.ns, err: err}
			}
			b = append(b, ",0)+IFNULL("...)
			b = append(b, cp.quotedName...)
			b = append(b, "<=>"...)
			if b, err = appendLiteral(b, e.image[k], cp, true); err != nil {
				return &stmtError{table: p.ns, err: err}
			}
			b = append(b, ",0)"...)
		}
		if len(where) > 0 {
			where = append(where, " OR "...)
		}
		where = append(where, m...)
	}
	if n == 0 {
		return nil
	}
	b = append(b, " END, "...)
	b = p.appendJSONObject(b)
	b = append(b, " FROM "...)
	b = append(b, p.quotedTable()...)
	b = append(b, " WHERE ("...)
	b = append(b, where...)
	b = append(b, ") AND NOT "...) // rows the batch rewrites are its own business
	b = append(b, p.deletePrefix[len(p.matchPrefix):]...)
	for i, idx := range g.entries {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = p.appendKey(b, a.st.entries[idx].image); err != nil {
			return &stmtError{table: p.ns, err: err}
		}
	}
	b = append(b, ") FOR UPDATE"...)
	r, err := a.query(string(b))
	if err != nil {
		return &stmtError{table: p.ns, err: fmt.Errorf("unique collision check: %w", err), server: true}
	}
	type hit struct {
		entry int32
		flags int
		image string
	}
	var hits []hit
	seen := map[int32]bool{}
	for i := range r.Values {
		v, _ := r.GetInt(i, 0)
		img, _ := r.GetString(i, 1)
		idx := cand[v/4]
		if !seen[idx] {
			seen[idx] = true
			hits = append(hits, hit{entry: idx, flags: int(v % 4), image: strings.Clone(img)})
		}
	}
	if len(hits) == 0 {
		return nil
	}
	which := make([]int32, len(hits))
	for i, h := range hits {
		for j, idx := range ids {
			if idx == h.entry {
				which[i] = int32(j)
			}
		}
	}
	applied, err := a.appliedTxns(ids, which)
	if err != nil {
		return err
	}
	var replayed []int32
	for _, h := range hits {
		if applied[a.st.entries[h.entry].first] {
			replayed = append(replayed, h.entry)
		}
	}
	kept, err := a.keptBefore(p, replayed)
	if err != nil {
		return err
	}
	var ins strings.Builder
	recorded := 0
	for _, h := range hits {
		e := &a.st.entries[h.entry]
		if applied[e.first] {
			// A replay: written as one-way replays are, unless its first
			// application kept the target's row.
			e.skip = kept[h.entry]
			a.s.conflicts.replays.Add(1)
			continue
		}
		apply := true
		switch p.conflict.rule.Policy {
		case TargetWins:
			apply = false
		case LastWriterWins:
			switch {
			case h.flags&2 != 0:
				apply = false
			case h.flags&1 != 0:
				apply = originOf(e.txn) > a.s.cfg.Site
			}
		}
		e.skip = !apply
		resolution := "kept"
		if apply {
			resolution = "applied"
		}
		if recorded == 0 {
			ins.WriteString("INSERT INTO " + a.s.conflictsTable() +
				" (kind,channel,table_name,row_key,change_kind,policy,resolution,incoming_origin,existing_origin,incoming_image,existing_image,source_position) VALUES ")
		} else {
			ins.WriteByte(',')
		}
		recorded++
		fmt.Fprintf(&ins, "('unique-collision',%s,%s,%s,'upsert',%s,%s,%s,%s,%s,%s,%s)",
			a.s.quotedChannel, quoteString(p.ns), quoteString(keyText(e.image, p)), quoteString(p.conflict.rule.Policy),
			quoteString(resolution), quoteString(originOf(e.txn)), quoteString(a.s.cfg.Site),
			quoteString(imageJSON(tableOf(e.txn, p), e.image, p)), quoteString(h.image), quoteString(e.txn.Pos.String()))
	}
	if recorded == 0 {
		return nil
	}
	if _, err := a.query(ins.String()); err != nil {
		return &stmtError{table: a.s.cfg.HamalSchema + ".conflicts", err: fmt.Errorf("record unique collisions: %w", err), server: true}
	}
	a.s.conflicts.count.Add(uint64(recorded))
	a.s.log.Warn("unique collisions detected", "table", p.ns, "count", recorded, "policy", p.conflict.rule.Policy)
	return nil
}
