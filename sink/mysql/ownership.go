package mysql

import (
	"fmt"
	"strings"
	"sync"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/shardrule"
)

// The ownership guard (Config.Ownership, with Site set): the data
// ownership backstop of multi-site. Each row of a guarded table has an
// owner (a column, e.g. user_id) whose home site a rule names (package
// shardrule: hash, range or list, the rule language of resharding). The
// access layer should route every owner's writes to its home site; a
// change whose origin is another site is a routing mistake that has not
// yet met a conflict. It is applied as any change is (and checked for
// conflicts as any change is), and recorded in <hamal>.conflicts with kind
// foreign-write, in the same target transaction, and counted per table
// (ForeignWrites, hamal_foreign_writes_total{channel,table}), so the
// mistake shows on the dashboard before it becomes a conflict.

// Ownership is one table's owner column and the rule mapping an owner to
// its home: the rule's shard i is site Sites[i].
type Ownership struct {
	Column string
	Rule   shardrule.Rule
	Sites  []string
}

// foreignWrite is one change of the unit whose origin is not its owner's
// home site.
type foreignWrite struct {
	plan  *tablePlan
	txn   *event.Txn
	image []any
	del   bool
	home  string // "" when the rule covers no home for the owner
}

// foreignCounts counts foreign writes per table.
type foreignCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

// ForeignWrites returns how many foreign writes (ownership guard) this
// sink recorded, per "schema.table".
func (s *Sink) ForeignWrites() map[string]uint64 {
	s.foreign.mu.Lock()
	defer s.foreign.mu.Unlock()
	out := make(map[string]uint64, len(s.foreign.n))
	for k, v := range s.foreign.n {
		out[k] = v
	}
	return out
}

// homePlan resolves the ownership column of table p (nil rule: none).
func (s *Sink) homePlan(p *tablePlan, tbl *event.Table) error {
	p.homeCol = -1
	o, ok := s.cfg.Ownership[p.ns]
	if !ok || s.cfg.Site == "" {
		return nil
	}
	for i, c := range tbl.Columns {
		if strings.EqualFold(c.Name, o.Column) {
			p.homeCol, p.home = i, &o
			return nil
		}
	}
	return &stmtError{table: p.ns, err: fmt.Errorf("owner column %q (sink.ownership) is not a column of %s: fix sink.ownership for the table", o.Column, p.ns)}
}

// checkHome notes change c of the current Txn when its origin is not the
// home site of its row's owner.
func (a *applier) checkHome(p *tablePlan, c *event.Change) {
	if p.home == nil {
		return
	}
	origin := originOf(a.txn)
	if origin == "" {
		return
	}
	image, del := c.After, false
	if image == nil {
		image, del = c.Before, true
	}
	home := ""
	if shard, err := p.home.Rule.Shard(image[p.homeCol]); err == nil && shard < len(p.home.Sites) {
		home = p.home.Sites[shard]
	}
	if home != origin {
		a.st.foreign = append(a.st.foreign, foreignWrite{plan: p, txn: a.txn, image: image, del: del, home: home})
	}
}

// recordForeign queues the unit's foreign writes into <hamal>.conflicts
// (kind foreign-write, resolution applied; existing_origin is the owner's
// home site) and counts them.
func (a *applier) recordForeign() error {
	fw := a.st.foreign
	if len(fw) == 0 {
		return nil
	}
	var ins strings.Builder
	ins.WriteString("INSERT INTO " + a.s.conflictsTable() +
		" (kind,channel,table_name,row_key,change_kind,policy,resolution,incoming_origin,existing_origin,incoming_image,existing_image,source_position) VALUES ")
	for i, f := range fw {
		if i > 0 {
			ins.WriteByte(',')
		}
		kind := "upsert"
		if f.del {
			kind = "delete"
		}
		home := f.home
		if home == "" {
			home = "(no home)"
		}
		fmt.Fprintf(&ins, "('foreign-write',%s,%s,%s,%s,'ownership','applied',%s,%s,%s,NULL,%s)",
			a.s.quotedChannel, quoteString(f.plan.ns), quoteString(keyText(f.image, f.plan)), quoteString(kind),
			quoteString(originOf(f.txn)), quoteString(home), quoteString(imageJSON(tableOf(f.txn, f.plan), f.image, f.plan)), quoteString(f.txn.Pos.String()))
	}
	if err := a.exec([]byte(ins.String()), a.s.cfg.HamalSchema+".conflicts"); err != nil {
		return err
	}
	a.s.foreign.mu.Lock()
	if a.s.foreign.n == nil {
		a.s.foreign.n = map[string]uint64{}
	}
	for _, f := range fw {
		a.s.foreign.n[f.plan.ns]++
	}
	a.s.foreign.mu.Unlock()
	a.s.log.Warn("foreign writes: changes whose origin is not their owner's home site (sink.ownership)", "count", len(fw),
		"table", fw[0].plan.ns, "origin", originOf(fw[0].txn), "home", fw[0].home, "position", fw[0].txn.Pos.String())
	clear(a.st.foreign)
	a.st.foreign = a.st.foreign[:0]
	return nil
}
