package mysql

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/hamal-replication/hamal/event"
)

// The replay fence of multi-site (Config.Site set). A replay after a
// restart applies again Txns the target already holds, onto rows that
// later Txns of the same suffix (or the target's resolved conflicts) have
// moved on: their before-images no longer match, and without a fence the
// conflict detection would take each for a conflict, record it, and, with
// target-wins or last-writer-wins, might resolve it against a change that
// is only being repeated.
//
// Full-image REPLACE converges on replay without any record (doc.go), so
// one-way channels keep none; conflict detection needs to know what was
// applied. Every unit therefore records the positions of its data Txns
// in <hamal>.applied, in the same target transaction as their rows, so
// the fence never disagrees with the data. A row that mismatches is first
// looked up there: when the batch's first change of the row was applied
// before, it is a replay, not a conflict, and the row is written as a
// one-way replay writes it (full images converge), unless the first
// application recorded a conflict on the row that kept the target's
// version: that resolution stands.
//
// Entries older than fenceRetention are pruned: a replay starts at the
// channel's checkpoint, which the pipeline persists every few seconds.

const appliedDDL = ` (
  channel VARCHAR(64) NOT NULL,
  pos_hash BINARY(16) NOT NULL,
  applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (channel, pos_hash),
  KEY (channel, applied_at)
)` + hamalTableOptions

// fenceRetention is how long a fence entry is kept, and fencePruneEvery
// how many units apart a sink prunes.
const (
	fenceRetention  = "1 HOUR"
	fencePruneEvery = 1024
)

func (s *Sink) appliedTable() string { return quoteIdent(s.cfg.HamalSchema) + ".applied" }

// fenced reports whether txn is recorded in the fence: a data Txn with
// its own position. A chunk of a split transaction shares its position
// with the other chunks, so it is not.
func fenced(txn *event.Txn) bool {
	return txn != nil && txn.Kind == event.KindDML && !txn.Partial && len(txn.Pos) > 0 && len(txn.Changes) > 0
}

// appendPosHash appends the fence key of txn as a literal.
func appendPosHash(b []byte, txn *event.Txn) []byte {
	h := sha256.Sum256(txn.Pos)
	return appendHex(b, h[:16])
}

// fence queues the fence entries of the batch's data Txns (and, every
// fencePruneEvery units, the pruning of old ones) into the unit.
func (a *applier) fence(batch []*event.Txn) error {
	if a.s.conflicts == nil {
		return nil
	}
	b := append(a.st.buf[:0], "INSERT IGNORE INTO "...)
	b = append(b, a.s.appliedTable()...)
	b = append(b, " (channel,pos_hash) VALUES "...)
	n := 0
	for _, txn := range batch {
		if !fenced(txn) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, '(')
		b = append(b, a.s.quotedChannel...)
		b = append(b, ',')
		b = appendPosHash(b, txn)
		b = append(b, ')')
	}
	a.st.buf = b[:0]
	if n == 0 {
		return nil
	}
	if err := a.exec(b, a.s.cfg.HamalSchema+".applied"); err != nil {
		return err
	}
	if a.s.conflicts.units.Add(1)%fencePruneEvery == 0 {
		q := "DELETE FROM " + a.s.appliedTable() + " WHERE channel=" + a.s.quotedChannel +
			" AND applied_at < NOW(6) - INTERVAL " + fenceRetention
		return a.exec([]byte(q), a.s.cfg.HamalSchema+".applied")
	}
	return nil
}

// appliedTxns looks up, in the fence, the first and last Txns of the
// entries ids[i] for i in which, and returns those the target applied.
func (a *applier) appliedTxns(ids []int32, which []int32) (map[*event.Txn]bool, error) {
	var txns []*event.Txn
	seen := map[*event.Txn]bool{}
	for _, i := range which {
		e := &a.st.entries[ids[i]]
		for _, txn := range []*event.Txn{e.first, e.txn} {
			if fenced(txn) && !seen[txn] {
				seen[txn] = true
				txns = append(txns, txn)
			}
		}
	}
	applied := map[*event.Txn]bool{}
	if len(txns) == 0 {
		return applied, nil
	}
	var q strings.Builder
	q.WriteString("SELECT HEX(pos_hash) FROM " + a.s.appliedTable() + " WHERE channel=" + a.s.quotedChannel + " AND pos_hash IN (")
	byHash := make(map[string][]*event.Txn, len(txns))
	for i, txn := range txns {
		if i > 0 {
			q.WriteByte(',')
		}
		q.Write(appendPosHash(nil, txn))
		h := sha256.Sum256(txn.Pos)
		key := fmt.Sprintf("%X", h[:16])
		byHash[key] = append(byHash[key], txn)
	}
	q.WriteByte(')')
	r, err := a.query(q.String())
	if err != nil {
		return nil, &stmtError{table: a.s.cfg.HamalSchema + ".applied", err: fmt.Errorf("read the replay fence: %w", err), server: true}
	}
	for i := range r.Values {
		h, _ := r.GetString(i, 0)
		for _, txn := range byHash[h] {
			applied[txn] = true
		}
	}
	return applied, nil
}

// Replays returns how many rows the conflict detection found changed on
// the target by a Txn it had applied before (a replay, not a conflict).
func (s *Sink) Replays() uint64 {
	if s.conflicts == nil {
		return 0
	}
	return s.conflicts.replays.Load()
}

// keptBefore returns the entries (of table p) whose replayed Txns were
// recorded, when first applied, as a conflict resolved by keeping the
// target's row.
func (a *applier) keptBefore(p *tablePlan, entries []int32) (map[int32]bool, error) {
	kept := map[int32]bool{}
	if len(entries) == 0 {
		return kept, nil
	}
	var q strings.Builder
	q.WriteString("SELECT row_key, source_position FROM " + a.s.conflictsTable() + " WHERE channel=" + a.s.quotedChannel +
		" AND table_name=" + quoteString(p.ns) + " AND resolution='kept' AND source_position IN (")
	positions := map[string]bool{}
	for _, idx := range entries {
		e := &a.st.entries[idx]
		for _, txn := range []*event.Txn{e.first, e.txn} {
			if pos := txn.Pos.String(); !positions[pos] {
				if len(positions) > 0 {
					q.WriteByte(',')
				}
				positions[pos] = true
				q.WriteString(quoteString(pos))
			}
		}
	}
	q.WriteByte(')')
	r, err := a.query(q.String())
	if err != nil {
		return nil, &stmtError{table: a.s.cfg.HamalSchema + ".conflicts", err: fmt.Errorf("read the conflicts of replayed changes: %w", err), server: true}
	}
	type recKey struct{ key, pos string }
	recorded := map[recKey]bool{}
	for i := range r.Values {
		k, _ := r.GetString(i, 0)
		pos, _ := r.GetString(i, 1)
		recorded[recKey{strings.Clone(k), strings.Clone(pos)}] = true
	}
	for _, idx := range entries {
		e := &a.st.entries[idx]
		key := keyText(e.image, p)
		if recorded[recKey{key, e.first.Pos.String()}] || recorded[recKey{key, e.txn.Pos.String()}] {
			kept[idx] = true
		}
	}
	return kept, nil
}
