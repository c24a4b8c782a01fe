package reshard

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/engine"
	enginemysql "github.com/hamal-replication/hamal/engine/mysql"
	"github.com/hamal-replication/hamal/shardrule"
	"github.com/hamal-replication/hamal/tablecopy"
)

// tableInfo is what the copy and verify need to know of a source table.
type tableInfo struct {
	plan   *Table
	table  *tablecopy.Table // columns, key (one or more columns), target name
	keyIdx int              // shard key's index in table.Columns
	rows   int64            // estimate (information_schema.TABLES.TABLE_ROWS), summed over sources
}

// columnNames lists the copied columns in ordinal order.
func (i *tableInfo) columnNames() []string {
	out := make([]string, len(i.table.Columns))
	for j, c := range i.table.Columns {
		out[j] = c.Name
	}
	return out
}

// Preflight checks everything that can be checked before any data moves:
// every source and target answers, the sources can be replicated (binlog
// settings, grants), every table exists on every source with a
// primary key (one or more columns) and its shard-key column, and a list rule
// without a default covers every shard-key value the sources hold. All
// problems are reported at once.
func Preflight(ctx context.Context, p *Plan) (map[string]*tableInfo, error) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for i, t := range p.Targets {
		c, err := dial(ctx, fmt.Sprintf("targets[%d]", i), t)
		if err != nil {
			add("%v", err)
			continue
		}
		c.Close()
	}
	infos := map[string]*tableInfo{}
	for i, s := range p.Sources {
		what := fmt.Sprintf("sources[%d]", i)
		rep, err := p.sourceConfig(i, "").Preflight(ctx, engine.Env{})
		if err != nil {
			add("%s %s: %v", what, s.Addr, err)
			continue
		}
		for _, pr := range rep.Problems {
			add("%s %s: %s; fix: %s", what, s.Addr, pr.What, pr.Fix)
		}
		c, err := dial(ctx, what, s)
		if err != nil {
			add("%v", err)
			continue
		}
		for ti := range p.Tables {
			t := &p.Tables[ti]
			info, err := describe(c, t)
			if err != nil {
				add("%s %s: table %s: %v", what, s.Addr, t.Name, err)
				continue
			}
			if prev, ok := infos[t.Name]; ok {
				if strings.Join(prev.columnNames(), ",") != strings.Join(info.columnNames(), ",") {
					add("table %s has different columns on %s than on sources[0]: the sources must share one schema", t.Name, s.Addr)
				}
				prev.rows += info.rows
			} else {
				infos[t.Name] = info
			}
			if t.sourceRule != nil {
				if err := checkSourceRule(c, t, info, i); err != nil {
					add("%s %s: %v", what, s.Addr, err)
				}
			}
			if lr, ok := t.rule.(shardrule.ListRule); ok && !hasDefault(lr) {
				if err := checkListCoverage(c, t, lr); err != nil {
					add("%s %s: %v", what, s.Addr, err)
				}
			}
		}
		c.Close()
	}
	if len(problems) > 0 {
		return nil, errors.New("migration " + p.Name + " cannot start (nothing was copied):\n  - " + strings.Join(problems, "\n  - "))
	}
	return infos, nil
}

func describe(c *client.Conn, t *Table) (*tableInfo, error) {
	schema, name, _ := splitName(t.Name)
	tc, err := tablecopy.Describe(c, schema, name)
	switch {
	case errors.Is(err, tablecopy.ErrNoTable):
		return nil, fmt.Errorf("does not exist: check tables[].name")
	case errors.Is(err, tablecopy.ErrNoKey):
		return nil, fmt.Errorf("has no primary key: the chunked copy and verify need one; add a primary key")
	case err != nil:
		return nil, err
	}
	tc.Target = t.TargetName()
	info := &tableInfo{plan: t, table: tc, keyIdx: tc.ColumnIndex(t.ShardKey), rows: tc.Rows}
	cols := info.columnNames()
	if info.keyIdx < 0 {
		return nil, fmt.Errorf("has no shard-key column %q (columns: %s): fix tables[].shard_key", t.ShardKey, strings.Join(cols, ", "))
	}
	if sr := t.SourceRule; sr != nil && tc.ColumnIndex(sr.ShardKey) < 0 {
		return nil, fmt.Errorf("has no column %q (columns: %s): fix tables[].source_rule.shard_key", sr.ShardKey, strings.Join(cols, ", "))
	}
	return info, nil
}

// checkListCoverage names shard-key values on the source that no list
// holds (a list rule without a default).
func hasDefault(lr shardrule.ListRule) bool { _, ok := lr.Default(); return ok }

func checkListCoverage(c *client.Conn, t *Table, lr shardrule.ListRule) error {
	vals := lr.Listed()
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = quoteString(v)
	}
	col := quoteIdent(t.ShardKey)
	r, err := c.Execute("SELECT DISTINCT " + col + " FROM " + qualified(t.Name) + " WHERE " + col + " IS NULL OR " + col +
		" NOT IN (" + strings.Join(q, ",") + ") LIMIT 10")
	if err != nil {
		return fmt.Errorf("table %s: check list coverage: %w", t.Name, err)
	}
	if len(r.Values) == 0 {
		return nil
	}
	var missing []string
	for i := range r.Values {
		if r.Values[i][0].Type == 0 || r.Values[i][0].Value() == nil {
			missing = append(missing, "NULL")
			continue
		}
		s, _ := r.GetString(i, 0)
		missing = append(missing, fmt.Sprintf("%q", s))
	}
	return fmt.Errorf("table %s: rule list leaves shard-key value(s) %s uncovered: add them to a list or set default", t.Name, strings.Join(missing, ", "))
}

// checkSourceRule names rows on source i that the table's source_rule
// sends to another source: reverse replication would route their changes
// there, so a wrong source_rule is refused before anything moves.
func checkSourceRule(c *client.Conn, t *Table, info *tableInfo, i int) error {
	r, err := c.Execute("SELECT " + info.table.Key.List() + " FROM " + qualified(t.Name) + " WHERE NOT IFNULL(" +
		t.sourceRule.Predicate(quoteIdent(t.SourceRule.ShardKey), i) + ", FALSE) LIMIT 5")
	if err != nil {
		return fmt.Errorf("table %s: check source_rule: %w", t.Name, err)
	}
	if len(r.Values) == 0 {
		return nil
	}
	keys := make([]string, len(r.Values))
	for j := range r.Values {
		keys[j] = tablecopy.ShowKey(info.table.Key.Values(r.Values[j], false))
	}
	return fmt.Errorf("table %s: source_rule does not send rows with key %s to this source (shard %d): fix tables[].source_rule to match how the sources are sharded",
		t.Name, strings.Join(keys, ", "), i)
}

// sourceConfig is the MySQL driver's source block of source i: the
// catch-up replica from start ("" for the preflight).
func (p *Plan) sourceConfig(i int, start string) *enginemysql.SourceConfig {
	s := p.Sources[i]
	tables := make([]string, len(p.Tables))
	for j, t := range p.Tables {
		tables[j] = t.Name
	}
	return &enginemysql.SourceConfig{Conn: s.Conn, ServerID: s.ServerID, Start: start, Tables: tables,
		HamalSchema: enginemysql.DefaultHamalSchema}
}

// reverseSourceConfig is the MySQL driver's source block of target j for
// reverse replication from start ("" for the check): the target's binlog,
// the plan's tables under their target names.
func (p *Plan) reverseSourceConfig(j int, start string) *enginemysql.SourceConfig {
	tg := p.Targets[j]
	id := tg.ServerID
	if id == 0 {
		id = 990000 + uint32(j)
	}
	tables := make([]string, len(p.Tables))
	for i, t := range p.Tables {
		tables[i] = t.TargetName()
	}
	return &enginemysql.SourceConfig{Conn: tg.Conn, ServerID: id, Start: start, Tables: tables,
		HamalSchema: enginemysql.DefaultHamalSchema}
}
