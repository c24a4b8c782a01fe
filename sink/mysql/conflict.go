package mysql

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hamal-replication/hamal/event"
)

// Conflict detection (multi-site, Config.Site set). Two sites changed the
// same row before either change crossed: the incoming change's
// before-image no longer matches the target row (or an insert finds a row
// that is not its own after-image). Before writing a table's rows, the
// sink reads the target rows of the batch under lock (one statement per
// table and chunk) and compares them, in SQL with <=> on the literals the
// sink writes, with what the batch's first change of each row expects. A
// row that already equals the incoming final image is a replay, not a
// conflict.
//
// Each conflict is resolved by the table's policy, recorded in
// <hamal>.conflicts in the same target transaction, and counted:
//
//   - source-wins: the incoming change is applied;
//   - target-wins: the target row is kept;
//   - last-writer-wins: the version with the greater value in the policy's
//     column wins (a delete carries its before-image's value); on a tie the
//     greater site name wins, so both sites pick the same version.
//
// In A⇄B, source-wins on A→B with target-wins on B→A makes A win on both
// sides; last-writer-wins is symmetric.

// Conflict policies.
const (
	SourceWins     = "source-wins"
	TargetWins     = "target-wins"
	LastWriterWins = "last-writer-wins"
)

// ConflictRule is the policy of a table; Column names the timestamp (or
// version) column for last-writer-wins.
type ConflictRule struct {
	Policy string
	Column string
}

// ConflictRules holds the default policy and per-table ("schema.table")
// overrides.
type ConflictRules struct {
	Default ConflictRule
	Tables  map[string]ConflictRule
}

func (r ConflictRules) rule(ns string) ConflictRule {
	c, ok := r.Tables[ns]
	if !ok {
		c = r.Default
	}
	if c.Policy == "" {
		c.Policy = SourceWins
	}
	return c
}

// validate checks policies and columns' presence in the rules.
func (r ConflictRules) validate() error {
	check := func(where string, c ConflictRule) error {
		switch c.Policy {
		case "", SourceWins, TargetWins:
			if c.Column != "" {
				return fmt.Errorf("%s: column is only used by %s", where, LastWriterWins)
			}
		case LastWriterWins:
			if c.Column == "" {
				return fmt.Errorf("%s: %s needs column, e.g. updated_at", where, LastWriterWins)
			}
		default:
			return fmt.Errorf("%s: policy %q is not one of %s, %s, %s", where, c.Policy, SourceWins, TargetWins, LastWriterWins)
		}
		return nil
	}
	if err := check("sink.conflicts.default", r.Default); err != nil {
		return err
	}
	for ns, c := range r.Tables {
		if err := check("sink.conflicts.tables."+ns, c); err != nil {
			return err
		}
	}
	return nil
}

// conflictState is the sink's detection switch and count.
type conflictState struct {
	rules   ConflictRules
	count   atomic.Uint64
	replays atomic.Uint64 // rows found ahead by a replay (fence.go)
	units   atomic.Uint64 // units fenced, for pruning
}

// Conflicts returns how many conflicts this sink detected (and resolved).
func (s *Sink) Conflicts() uint64 {
	if s.conflicts == nil {
		return 0
	}
	return s.conflicts.count.Load()
}

func (s *Sink) conflictsTable() string { return quoteIdent(s.cfg.HamalSchema) + ".conflicts" }

const conflictsDDL = ` (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind VARCHAR(20) NOT NULL DEFAULT 'conflict',
  detected_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  channel VARCHAR(64) NOT NULL,
  table_name VARCHAR(200) NOT NULL,
  row_key TEXT NOT NULL,
  change_kind VARCHAR(8) NOT NULL,
  policy VARCHAR(20) NOT NULL,
  resolution VARCHAR(8) NOT NULL,
  incoming_origin VARCHAR(32) NOT NULL,
  existing_origin VARCHAR(32) NOT NULL,
  incoming_image LONGTEXT,
  existing_image LONGTEXT,
  source_position TEXT NOT NULL,
  KEY (table_name, detected_at)
)` + hamalTableOptions

// conflictPlan is a table's resolved rule.
type conflictPlan struct {
	rule   ConflictRule
	column int // index of rule.Column in the source columns; -1 if none
}

func (s *Sink) conflictPlanFor(p *tablePlan, tbl *event.Table) error {
	if s.conflicts == nil {
		return nil
	}
	rule := s.conflicts.rules.rule(p.ns)
	p.conflict = conflictPlan{rule: rule, column: -1}
	if rule.Policy != LastWriterWins {
		return nil
	}
	for i, c := range tbl.Columns {
		if strings.EqualFold(c.Name, rule.Column) {
			p.conflict.column = i
			return nil
		}
	}
	return &stmtError{table: p.ns, err: fmt.Errorf("last-writer-wins column %q is not a column of %s: fix sink.conflicts for the table", rule.Column, p.ns)}
}

// Verdict bits of the detection query, per row.
const (
	flagMatchPrior = 1 << iota // target row equals the expected prior image
	flagMatchFinal             // target row equals the incoming final image
	flagNewer                  // last-writer-wins: target's column is greater
	flagTie                    // last-writer-wins: the columns are equal
)

// detect compares the target rows of group g with what the batch expects,
// marks the entries whose change loses, and records every conflict.
func (a *applier) detect(g *rowGroup) error {
	p := g.plan
	const chunk = 200
	for start := 0; start < len(g.entries); start += chunk {
		ids := g.entries[start:min(start+chunk, len(g.entries))]
		found, err := a.detectQuery(p, ids)
		if err != nil {
			return err
		}
		var mismatched []int32
		for i, idx := range ids {
			e := &a.st.entries[idx]
			flags, present := found[i]
			var conflict bool
			switch {
			case e.prior == nil: // insert, or a row whose key the batch created
				conflict = present && (e.del || flags&flagMatchFinal == 0)
			case !present:
				conflict = !e.del // the target deleted a row the source updated
			default:
				conflict = flags&(flagMatchPrior|flagMatchFinal) == 0
			}
			if conflict {
				mismatched = append(mismatched, int32(i))
			}
		}
		if len(mismatched) == 0 {
			if err := a.detectCollisions(g, ids); err != nil {
				return err
			}
			continue
		}
		// A replay is not a conflict: a row whose first change of the batch
		// the target already applied (the fence says so) differs because
		// the target is ahead, not because another site wrote it.
		applied, err := a.appliedTxns(ids, mismatched)
		if err != nil {
			return err
		}
		var replayed []int32
		for _, i := range mismatched {
			if applied[a.st.entries[ids[i]].first] {
				replayed = append(replayed, ids[i])
			}
		}
		kept, err := a.keptBefore(p, replayed)
		if err != nil {
			return err
		}
		var records []conflictRecord
		for _, i := range mismatched {
			idx := ids[i]
			e := &a.st.entries[idx]
			flags, present := found[int(i)]
			if applied[e.first] {
				// Applied before: the target is ahead, this is a replay.
				// It is written as a one-way replay is (full images
				// converge, doc.go), unless the first application kept
				// the target's row (a recorded conflict resolved so):
				// that decision stands.
				e.skip = kept[idx]
				a.s.conflicts.replays.Add(1)
				continue
			}
			apply := a.resolve(p, e, present, flags)
			e.skip = !apply
			records = append(records, conflictRecord{entry: idx, applied: apply})
		}
		if len(records) > 0 {
			if err := a.record(p, records); err != nil {
				return err
			}
		}
		if err := a.detectCollisions(g, ids); err != nil {
			return err
		}
	}
	return nil
}

// resolve applies the table's policy: true when the incoming change wins.
func (a *applier) resolve(p *tablePlan, e *rowEntry, present bool, flags int) bool {
	switch p.conflict.rule.Policy {
	case TargetWins:
		return false
	case LastWriterWins:
		if !present {
			return true // nothing newer to keep: the incoming version is the last one seen
		}
		if flags&flagNewer != 0 {
			return false
		}
		if flags&flagTie != 0 {
			return originOf(e.txn) > a.s.cfg.Site
		}
		return true
	}
	return true
}

func originOf(txn *event.Txn) string {
	if txn.Origin != "" {
		return txn.Origin
	}
	if len(txn.Path) > 0 {
		return txn.Path[0]
	}
	return ""
}

// detectQuery locks and compares the target rows of entries ids, in one
// statement: SELECT CASE WHEN key=K0 THEN verdict0 … END FROM t WHERE key
// IN (K0, …) FOR UPDATE, each verdict being the entry's position × 16 plus
// its flags. It returns the flags of each entry found on the target, by
// position in ids.
func (a *applier) detectQuery(p *tablePlan, ids []int32) (map[int]int, error) {
	b := append(a.st.buf[:0], "SELECT CASE"...)
	var err error
	for i, idx := range ids {
		e := &a.st.entries[idx]
		b = append(b, " WHEN "...)
		if b, err = p.appendKeyMatch(b, e.image); err != nil {
			break
		}
		b = append(b, " THEN "...)
		b = strconv.AppendInt(b, int64(i)*16, 10)
		b = append(b, "+("...)
		if e.prior != nil {
			if b, err = p.appendMatch(b, e.prior, true); err != nil {
				break
			}
		} else {
			b = append(b, '0')
		}
		b = append(b, ")+2*("...)
		if !e.del {
			if b, err = p.appendMatch(b, e.image, true); err != nil {
				break
			}
		} else {
			b = append(b, '0')
		}
		b = append(b, ')')
		if k := p.conflict.column; k >= 0 {
			cp := &p.cols[k]
			b = append(b, "+4*IFNULL("...)
			b = append(b, cp.quotedName...)
			b = append(b, '>')
			if b, err = appendLiteral(b, e.image[k], cp, true); err != nil {
				break
			}
			b = append(b, ",0)+8*IFNULL("...)
			b = append(b, cp.quotedName...)
			b = append(b, "<=>"...)
			if b, err = appendLiteral(b, e.image[k], cp, true); err != nil {
				break
			}
			b = append(b, ",0)"...)
		}
	}
	if err == nil {
		b = append(b, " END FROM "...)
		b = append(b, p.quotedTable()...)
		b = append(b, " WHERE "...)
		b = append(b, p.deletePrefix[len(p.matchPrefix):]...) // (k1,k2) IN (
		for i, idx := range ids {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = p.appendKey(b, a.st.entries[idx].image); err != nil {
				break
			}
		}
		b = append(b, ") FOR UPDATE"...)
	}
	a.st.buf = b[:0]
	if err != nil {
		return nil, &stmtError{table: p.ns, err: err}
	}
	r, err := a.query(string(b))
	if err != nil {
		return nil, &stmtError{table: p.ns, err: fmt.Errorf("conflict check: %w", err), server: true}
	}
	found := make(map[int]int, len(r.Values))
	for i := range r.Values {
		v, _ := r.GetInt(i, 0)
		found[int(v/16)] = int(v % 16)
	}
	return found, nil
}

// appendMatch appends (c1 <=> v1 AND c2 <=> v2 …) over the columns the
// target does not generate. With exact, text compares byte-exactly, so a
// change of case or accents is seen (conflict detection); without, it
// compares as the column's collation does (full-row match of keyless
// tables).
//
// Each column compares the value the binlog carries with what the column
// holds, in the same form: an ENUM or SET given as an integer (its index
// or bitmask) against col+0, not its label; a BINARY(n) with its pad bytes
// trimmed on both sides (the binlog drops them); FLOAT as the exact double
// of the float32 (what the server compares FLOAT in); DECIMAL unquoted;
// TIMESTAMP as UTC text in the UTC session; other charsets as
// _charset X'…' under BINARY. TestConflictFidelity checks every type.
func (p *tablePlan) appendMatch(b []byte, image []any, exact bool) ([]byte, error) {
	var err error
	first := true
	for i := range p.cols {
		cp := &p.cols[i]
		if cp.generated {
			continue
		}
		if !first {
			b = append(b, " AND "...)
		}
		first = false
		v := image[i]
		switch {
		case cp.numbered && isInteger(v):
			b = append(b, cp.quotedName...)
			b = append(b, "+0 <=> "...)
			if b, err = appendLiteral(b, v, cp, true); err != nil {
				return b, err
			}
			continue
		case cp.padded && v != nil:
			b = append(b, "TRIM(TRAILING X'00' FROM "...)
			b = append(b, cp.quotedName...)
			b = append(b, ") <=> TRIM(TRAILING X'00' FROM "...)
			if b, err = appendLiteral(b, v, cp, true); err != nil {
				return b, err
			}
			b = append(b, ')')
			continue
		}
		// Only text compares as bytes: BINARY on a number would compare
		// its shortest text ("0.1" for a FLOAT) with the literal's digits.
		text := exact && (cp.kind == kindUTF8 || cp.kind == kindCharsetHex)
		if text {
			b = append(b, "BINARY "...)
		}
		b = append(b, cp.quotedName...)
		b = append(b, " <=> "...)
		if text {
			b = append(b, "BINARY "...)
		}
		if b, err = appendLiteral(b, v, cp, true); err != nil {
			return b, err
		}
	}
	if first {
		b = append(b, '1')
	}
	return b, nil
}

// isInteger reports whether v is one of the integer types go-mysql decodes.
func isInteger(v any) bool {
	switch v.(type) {
	case int64, int32, int16, int8, int, uint64, uint32, uint16, uint8, uint:
		return true
	}
	return false
}

// appendKeyMatch appends k1 = v1 AND k2 = v2 for the row key of image.
func (p *tablePlan) appendKeyMatch(b []byte, image []any) ([]byte, error) {
	var err error
	for i, k := range p.keyCols {
		if i > 0 {
			b = append(b, " AND "...)
		}
		b = append(b, p.cols[k].quotedName...)
		b = append(b, '=')
		if b, err = appendLiteral(b, image[k], &p.cols[k], true); err != nil {
			return b, err
		}
	}
	return b, nil
}
