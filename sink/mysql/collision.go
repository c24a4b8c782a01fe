package mysql

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// Unique collisions. An incoming row whose unique value (a unique key
// other than the row key) is held on the target by a different row that
// the batch does not rewrite makes REPLACE delete that row. One query
// finds such rows in both modes (appendCollisionFrom), locked, so what it
// finds is what the REPLACE removes:
//
//   - With sites set (multi-site) it is a conflict between two sites: it
//     is read before the table's rows are written (its own round trip),
//     recorded in <hamal>.conflicts with kind unique-collision and both
//     images, and resolved by the table's policy (source-wins: the
//     incoming row is written and the target's row goes; target-wins: the
//     incoming row is not written; last-writer-wins: the greater policy
//     column wins, a tie to the greater site). A replay (the fence knows
//     the change) is not a collision.
//   - One-way channels keep REPLACE's semantics, and count it: the query
//     (SELECT of the row keys) rides in the unit's multi-statement round
//     trip right before the table's REPLACEs, only for tables with such a
//     key, and its rows are counted per table once the unit commits
//     (UniqueReplacements, hamal_unique_replacements_total) and logged,
//     at most once a minute per table, with the removed row's key. An
//     aborted unit counts nothing. Without a fence a one-way sink cannot
//     tell a replay; replaying a batch already applied finds its own rows
//     (same keys) and counts nothing, but a replayed suffix in which a
//     unique value moved from one row to another across batches counts
//     the row its later change writes back.

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
	var err error
	n := 0
	for i, idx := range cand {
		e := &a.st.entries[idx]
		var m []byte
		var ok bool
		if m, ok, err = p.appendUniqueMatch(nil, e.image); err != nil {
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
	}
	if n == 0 {
		return nil
	}
	b = append(b, " END, "...)
	b = p.appendJSONObject(b)
	if b, _, err = a.appendCollisionFrom(b, g, cand); err != nil {
		return &stmtError{table: p.ns, err: err}
	}
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

// appendUniqueMatch appends ((u1=v1) OR (u2a=v2a AND u2b=v2b) …) over the
// unique keys of image that hold no NULL (NULL never collides); false
// when every one holds one.
func (p *tablePlan) appendUniqueMatch(b []byte, image []any) ([]byte, bool, error) {
	some := false
	var err error
	b = append(b, '(')
	for _, uk := range p.uniques {
		if hasNull(image, uk) {
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
			if b, err = appendLiteral(b, image[c], &p.cols[c], true); err != nil {
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

func hasNull(image []any, cols []int) bool {
	for _, c := range cols {
		if image[c] == nil {
			return true
		}
	}
	return false
}

// appendCollisionFrom appends the rest of a collision query, the part
// both modes share: the target rows holding a unique value of an entry in
// cand, other than the rows group g writes or deletes itself (a value
// moved between rows of the batch is the batch's business), locked:
//
//	FROM t WHERE (u1 IN (…) OR (u2a=… AND u2b=…) …) AND NOT k IN (<keys of g>) FOR UPDATE
//
// It returns false when no entry of cand has a unique value without NULL
// (the query would find nothing).
func (a *applier) appendCollisionFrom(b []byte, g *rowGroup, cand []int32) ([]byte, bool, error) {
	p := g.plan
	b = append(b, " FROM "...)
	b = append(b, p.quotedTable()...)
	b = append(b, " WHERE ("...)
	var err error
	some := false
	for _, uk := range p.uniques {
		n := 0
		for _, idx := range cand {
			img := a.st.entries[idx].image
			if hasNull(img, uk) {
				continue
			}
			switch {
			case n == 0 && some:
				b = append(b, " OR "...)
			case n > 0 && len(uk) == 1:
				b = append(b, ',')
			case n > 0:
				b = append(b, " OR "...)
			}
			if len(uk) == 1 {
				if n == 0 {
					b = append(b, p.cols[uk[0]].quotedName...)
					b = append(b, " IN ("...)
				}
				if b, err = appendLiteral(b, img[uk[0]], &p.cols[uk[0]], true); err != nil {
					return b, false, err
				}
			} else {
				b = append(b, '(')
				for j, c := range uk {
					if j > 0 {
						b = append(b, " AND "...)
					}
					b = append(b, p.cols[c].quotedName...)
					b = append(b, '=')
					if b, err = appendLiteral(b, img[c], &p.cols[c], true); err != nil {
						return b, false, err
					}
				}
				b = append(b, ')')
			}
			n++
		}
		if n > 0 && len(uk) == 1 {
			b = append(b, ')')
		}
		some = some || n > 0
	}
	if !some {
		return b, false, nil
	}
	b = append(b, ") AND NOT "...)
	b = append(b, p.deletePrefix[len(p.matchPrefix):]...) // (k1,k2) IN (
	for i, idx := range g.entries {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = p.appendKey(b, a.st.entries[idx].image); err != nil {
			return b, false, err
		}
	}
	return append(b, ") FOR UPDATE"...), true, nil
}

// queueReplacedQuery queues, for a one-way unit, the query that reads the
// target rows the upserts of group g will remove for holding one of their
// unique values: nothing for a table without a unique key besides its row
// key. The rows are counted when the result arrives (noteReplaced).
func (a *applier) queueReplacedQuery(g *rowGroup) error {
	p := g.plan
	if len(p.uniques) == 0 {
		return nil
	}
	var cand []int32
	for _, idx := range g.entries {
		if e := &a.st.entries[idx]; !e.del {
			cand = append(cand, idx)
		}
	}
	for start := 0; start < len(cand); start += maxRowsPerStatement {
		chunk := cand[start:min(start+maxRowsPerStatement, len(cand))]
		b := append(a.st.buf[:0], "SELECT "...)
		for i, k := range p.keyCols {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, p.cols[k].quotedName...)
		}
		b, ok, err := a.appendCollisionFrom(b, g, chunk)
		a.st.buf = b[:0]
		if err != nil {
			return &stmtError{table: p.ns, err: err}
		}
		if !ok {
			continue
		}
		if err := a.execRead(b, p.ns, p); err != nil {
			return err
		}
	}
	return nil
}

// replacement counts one unit's unique replacements in one table.
type replacement struct {
	plan  *tablePlan
	n     uint64
	first string // the row key of the first removed row
}

// noteReplaced notes the rows of r, target rows of table p that the
// unit's REPLACEs remove (see queueReplacedQuery).
func (a *applier) noteReplaced(p *tablePlan, r *mysql.Result) {
	if r == nil || r.Resultset == nil || len(r.Values) == 0 {
		return
	}
	var rep *replacement
	for i := range a.st.replaced {
		if a.st.replaced[i].plan == p {
			rep = &a.st.replaced[i]
		}
	}
	if rep == nil {
		parts := make([]string, len(p.keyCols))
		for j, k := range p.keyCols {
			var v any
			if j < len(r.Values[0]) {
				v = event.ReadableValue(r.Values[0][j].Value())
			}
			parts[j] = fmt.Sprintf("%s=%v", strings.Trim(p.cols[k].quotedName, "`"), v)
		}
		a.st.replaced = append(a.st.replaced, replacement{plan: p, first: strings.Join(parts, ",")})
		rep = &a.st.replaced[len(a.st.replaced)-1]
	}
	rep.n += uint64(len(r.Values))
}

// replacementLogEvery is how often, at most, a table's unique
// replacements are logged; the count in between is in the next line.
const replacementLogEvery = time.Minute

// replacementCounts counts unique replacements per table, for
// UniqueReplacements, and rate-limits their log lines.
type replacementCounts struct {
	mu       sync.Mutex
	n        map[string]uint64
	loggedAt map[string]time.Time
	unlogged map[string]uint64 // counted since the table's last log line
}

// UniqueReplacements returns how many target rows this sink's REPLACEs
// removed, per "schema.table", for holding a unique value of an incoming
// row with another row key (one-way channels; with sites set these are
// unique-collision conflicts).
func (s *Sink) UniqueReplacements() map[string]uint64 {
	s.replaced.mu.Lock()
	defer s.replaced.mu.Unlock()
	out := make(map[string]uint64, len(s.replaced.n))
	for k, v := range s.replaced.n {
		out[k] = v
	}
	return out
}

// countReplaced adds a committed unit's unique replacements.
func (s *Sink) countReplaced(reps []replacement) {
	if len(reps) == 0 {
		return
	}
	now := time.Now()
	c := &s.replaced
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n, c.loggedAt, c.unlogged = map[string]uint64{}, map[string]time.Time{}, map[string]uint64{}
	}
	for _, r := range reps {
		ns := r.plan.ns
		c.n[ns] += r.n
		c.unlogged[ns] += r.n
		if at, ok := c.loggedAt[ns]; ok && now.Sub(at) < replacementLogEvery {
			continue
		}
		s.log.Warn("unique replacements: REPLACE removed target rows holding a unique value of an incoming row with another key (rows only the target had)",
			"table", ns, "count", c.unlogged[ns], "removed_row_key", r.first, "total", c.n[ns])
		c.loggedAt[ns] = now
		c.unlogged[ns] = 0
	}
}
