package mysql

import (
	"strings"
	"time"
)

// Unsynced owners (lossy failover protection). Before a write, the
// application records the write's data owner (a user id, say) at the remote
// site in <hamal>.unsynced with its own site as origin; after a failover,
// the remote site refuses writes for owners still listed, since their
// latest writes may be lost with the failed site. The sink clears the
// entries: with Config.Unsynced naming a table's owner column, each target
// transaction deletes the entries of the owners its rows carry, for the
// batch's origin, in the same transaction as the rows.
//
// An entry is cleared by a write that committed in the same second as the
// entry's since or later (binlog commit times have second precision), so
// an application must record the entry before it writes, and an owner
// written twice within a second may be cleared by the first write.

const unsyncedDDL = ` (
  owner VARCHAR(255) NOT NULL,
  origin VARCHAR(32) NOT NULL,
  since TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (owner, origin)
)` + hamalTableOptions

func (s *Sink) unsyncedTable() string { return quoteIdent(s.cfg.HamalSchema) + ".unsynced" }

// noteOwner remembers the owner value of a row of table p, when the table
// has an owner column.
func (a *applier) noteOwner(p *tablePlan, image []any) {
	if p.ownerCol < 0 || image == nil {
		return
	}
	var owner string
	switch v := image[p.ownerCol].(type) {
	case string:
		owner = v
	case []byte:
		owner = string(v)
	default:
		if owner = ownerText(v); owner == "" {
			return // NULL or not an integer: no owner to clear
		}
	}
	if a.st.owners == nil {
		a.st.owners = make(map[string]struct{})
	}
	a.st.owners[owner] = struct{}{}
	if t := a.txn.CommitTime; t.After(a.st.ownersUntil) {
		a.st.ownersUntil = t
	}
}

// ownerText renders an integer owner as the application would write it;
// "" for anything else.
func ownerText(v any) string {
	switch v.(type) {
	case int64, int32, int16, int8, int, uint64, uint32, uint16, uint8:
		b, _ := appendLiteral(nil, v, &columnPlan{kind: kindPlain}, false)
		return string(b)
	}
	return ""
}

// clearOwners deletes the unsynced entries of the owners the batch carried.
func (a *applier) clearOwners(origin string) error {
	st := a.st
	if len(st.owners) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("DELETE FROM " + a.s.unsyncedTable() + " WHERE origin=" + quoteString(origin) + " AND since < ")
	until := st.ownersUntil.Truncate(time.Second).Add(time.Second).UTC()
	b.WriteString(quoteString(until.Format("2006-01-02 15:04:05")))
	b.WriteString(" AND owner IN (")
	first := true
	for o := range st.owners {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(quoteString(o))
	}
	b.WriteByte(')')
	clear(st.owners)
	st.ownersUntil = time.Time{}
	_, err := a.query(b.String())
	if err != nil {
		return &stmtError{table: a.s.cfg.HamalSchema + ".unsynced", err: err, server: true}
	}
	return nil
}
