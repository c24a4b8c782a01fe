package reshard

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/engine"
	enginemysql "github.com/hamal-replication/hamal/engine/mysql"
)

// Check is `hamal migrate check`: it runs, without moving data, the
// preflight of every channel of every phase with the plan's users (the
// catch-up's source and sinks, reverse replication's source and sinks,
// each as `hamal check` runs it), the grants of the fence, the rollback
// and the plan's options, the accounts that could write through a
// read_only fence, AUTO_INCREMENT columns whose new rows would collide
// across the targets, and the migration's own preflight (tables, keys,
// rules). Every failure is counted in r with the statement that fixes it.
func Check(ctx context.Context, p *Plan, r *engine.Report, out func(format string, args ...any)) {
	var tables []engine.Table
	var srcSchemas, dstSchemas []string
	seenSrc, seenDst := map[string]bool{}, map[string]bool{}
	for _, t := range p.Tables {
		schema, name, _ := splitName(t.Name)
		tables = append(tables, engine.Table{Schema: schema, Name: name})
		if !seenSrc[schema] {
			seenSrc[schema] = true
			srcSchemas = append(srcSchemas, schema)
		}
		ds, _, _ := splitName(t.TargetName())
		if !seenDst[ds] {
			seenDst[ds] = true
			dstSchemas = append(dstSchemas, ds)
		}
	}
	readOnly := p.Cutover.Fence == "read_only"

	// Catch-up: each source → every target.
	for i := range p.Sources {
		name := fmt.Sprintf("migrate-%s-fwd%d", p.Name, i)
		out("catch-up channel %s: sources[%d] %s → targets (the source user reads the binlog; the target users apply)", name, i, p.Sources[i].Addr)
		r.Tables, r.Checkpoint = nil, nil
		p.sourceConfig(i, "").Check(ctx, engine.Env{Channel: name}, r)
		for _, tg := range p.Targets {
			// The targets' tables do not exist before the snapshot creates
			// them: check their grants, not their columns.
			r.Tables, r.Seeding = targetTables(p), true
			sc := &enginemysql.SinkConfig{Conn: tg.Conn, HamalSchema: enginemysql.DefaultHamalSchema}
			sc.Check(ctx, engine.Env{Channel: name}, r)
		}
	}
	// The fence, the rollback and the plan's options.
	for i, s := range p.Sources {
		var needs []enginemysql.Need
		if readOnly {
			needs = append(needs, enginemysql.Need{Privs: []string{"READ_ONLY ADMIN"}, DB: "*", Table: "*",
				Why: "set read_only (the cut-over's fence), and write through it (reverse replication after the cut-over)"})
		}
		if p.Cutover.ReadOnlyBypass == BypassFence {
			needs = append(needs, enginemysql.Need{Privs: []string{"CREATE USER", "CONNECTION ADMIN", "PROCESS"}, DB: "*", Table: "*",
				Why: "lock accounts that can write through read_only, see and end their sessions (cutover.read_only_bypass: fence)"})
		}
		if len(needs) > 0 {
			out("cut-over fence on sources[%d] %s", i, s.Addr)
			enginemysql.CheckPrivileges(ctx, r, fmt.Sprintf("sources[%d]", i), s.Conn, needs)
		}
	}
	for j, tg := range p.Targets {
		needs := []enginemysql.Need{{Privs: []string{"READ_ONLY ADMIN"}, DB: "*", Table: "*", Why: "set read_only on the targets for a rollback (cancel after the cut-over)"}}
		if p.AutoIncrement.Stagger {
			needs = append(needs, enginemysql.Need{Privs: []string{"SUPER"}, DB: "*", Table: "*", Why: "SET GLOBAL auto_increment_increment/offset (auto_increment.stagger)"})
		}
		out("rollback fence on targets[%d] %s", j, tg.Addr)
		enginemysql.CheckPrivileges(ctx, r, fmt.Sprintf("targets[%d]", j), tg.Conn, needs)
	}

	// Reverse replication: each target → the sources.
	if p.reversible() {
		for j, tg := range p.Targets {
			name := fmt.Sprintf("migrate-%s-rev%d", p.Name, j)
			out("reverse channel %s: targets[%d] %s → sources (after the cut-over; the target user reads the binlog; the source users apply)", name, j, tg.Addr)
			r.Tables, r.Checkpoint, r.Seeding = nil, nil, false
			p.reverseSourceConfig(j, "").Check(ctx, engine.Env{Channel: name, Site: p.Sites.Target}, r)
			for i, s := range p.Sources {
				r.Tables, r.Seeding = tables, true
				sc := &enginemysql.SinkConfig{Conn: s.Conn, HamalSchema: enginemysql.DefaultHamalSchema}
				// Site unset: the check must not create the hamal schema's
				// tables; their grants are checked just below.
				sc.Check(ctx, engine.Env{Channel: name}, r)
				enginemysql.CheckPrivileges(ctx, r, fmt.Sprintf("sources[%d]", i), s.Conn, sc.Needs(nil, true))
			}
		}
	} else {
		r.Warn("a merge without tables[].source_rule on every table has no reverse replication: cancel after the cut-over is refused",
			"set tables[].source_rule (how the sources are sharded) on every table to be able to roll back")
	}
	r.Tables, r.Checkpoint, r.Seeding = nil, nil, false

	out("accounts that can write through read_only, AUTO_INCREMENT, tables and rules")
	checkBypass(ctx, p, r)
	checkAutoIncrement(ctx, p, r)
	if _, err := Preflight(ctx, p); err != nil {
		r.Fail(err.Error(), "fix each item above")
	} else {
		r.OK("tables, primary keys, shard keys and rules: %d table(s) on %d source(s)", len(p.Tables), len(p.Sources))
	}
}

// targetTables are the plan's tables as the targets name them.
func targetTables(p *Plan) []engine.Table {
	var out []engine.Table
	for _, t := range p.Tables {
		schema, name, _ := splitName(t.TargetName())
		out = append(out, engine.Table{Schema: schema, Name: name})
	}
	return out
}

// checkBypass names the accounts on each source that could write through
// the read_only fence: a failure when the cut-over would refuse them, a
// warning when it fences them or only warns.
func checkBypass(ctx context.Context, p *Plan, r *engine.Report) {
	if p.Cutover.Fence != "read_only" {
		return
	}
	for i, s := range p.Sources {
		what := fmt.Sprintf("sources[%d]", i)
		c, err := dial(ctx, what, s)
		if err != nil {
			r.Fail(err.Error(), "check addr, user and password")
			continue
		}
		accts, err := bypassAccounts(c, p.ownUsers(), p.Cutover.BypassAllow)
		c.Close()
		switch {
		case err != nil:
			r.Fail(fmt.Sprintf("%s %s: %v", what, s.Addr, err), "grant the source user SELECT on *.*")
		case len(accts) == 0:
			r.OK("%s %s: no account but the migration's own can write through read_only", what, s.Addr)
		case p.Cutover.ReadOnlyBypass == BypassRefuse:
			r.Fail(fmt.Sprintf("%s %s: accounts that can write through read_only (the cut-over refuses while they exist): %s", what, s.Addr, accountList(accts)), bypassFix(accts))
		case p.Cutover.ReadOnlyBypass == BypassFence:
			r.Warn(fmt.Sprintf("%s %s: accounts that can write through read_only: %s; the cut-over locks them and ends their sessions while the sources are fenced", what, s.Addr, accountList(accts)), bypassFix(accts))
		default:
			r.Warn(fmt.Sprintf("%s %s: accounts that can write through read_only, and cutover.read_only_bypass is warn: %s", what, s.Addr, accountList(accts)), bypassFix(accts))
		}
	}
}

// checkAutoIncrement finds tables whose AUTO_INCREMENT column would give
// new rows on different targets the same value: a split (several
// targets), the column in a unique key that does not hold the shard key
// (or is the shard key itself), and the targets' auto_increment settings
// not disjoint.
func checkAutoIncrement(ctx context.Context, p *Plan, r *engine.Report) {
	if len(p.Targets) < 2 || len(p.Sources) == 0 {
		return
	}
	if p.AutoIncrement.Stagger {
		r.OK("auto_increment.stagger: the cut-over sets auto_increment_increment=%d and auto_increment_offset=1..%d on the targets", p.AutoIncrement.Increment, len(p.Targets))
		return
	}
	if disjointAutoIncrement(ctx, p) {
		r.OK("targets: auto_increment_increment and _offset already give each target its own values")
		return
	}
	c, err := dial(ctx, "sources[0]", p.Sources[0])
	if err != nil {
		r.Fail(err.Error(), "check addr, user and password")
		return
	}
	defer c.Close()
	var colliding []string
	for _, t := range p.Tables {
		schema, name, _ := splitName(t.Name)
		col, err := queryString(c, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "+quoteString(schema)+
			" AND TABLE_NAME = "+quoteString(name)+" AND EXTRA LIKE '%auto_increment%'")
		if err != nil {
			r.Fail(fmt.Sprintf("table %s: read its AUTO_INCREMENT column: %v", t.Name, err), "grant the source user SELECT on *.*")
			continue
		}
		if col == "" {
			continue
		}
		owned, err := ruleOwnsKeys(c, schema, name, col, t.ShardKey)
		if err != nil {
			r.Fail(fmt.Sprintf("table %s: read its unique keys: %v", t.Name, err), "grant the source user SELECT on *.*")
			continue
		}
		if !owned {
			colliding = append(colliding, fmt.Sprintf("%s.%s", t.Name, col))
		}
	}
	sort.Strings(colliding)
	if len(colliding) == 0 {
		r.OK("AUTO_INCREMENT: no table's new rows can collide across the targets")
		return
	}
	r.Fail(fmt.Sprintf("AUTO_INCREMENT column(s) %s: after the cut-over every target continues from the same counter, so new rows on different targets get the same values (and reverse replication into the source collides)", strings.Join(colliding, ", ")),
		fmt.Sprintf("set auto_increment: {stagger: true} in the plan (the cut-over sets auto_increment_increment=%d and auto_increment_offset=1..%d on the targets; put the same in their server config), or make the shard key part of every unique key that holds the column", len(p.Targets), len(p.Targets)))
}

// ruleOwnsKeys reports whether every unique key holding col also holds the
// shard key (another column): rows on different shards differ in the
// shard key, so their keys never collide.
func ruleOwnsKeys(c *client.Conn, schema, table, col, shardKey string) (bool, error) {
	if strings.EqualFold(col, shardKey) {
		return false, nil // a new id from one target's counter may belong to another
	}
	r, err := c.Execute("SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = " + quoteString(schema) +
		" AND TABLE_NAME = " + quoteString(table) + " AND NON_UNIQUE = 0")
	if err != nil {
		return false, err
	}
	cols := map[string]map[string]bool{}
	for i := range r.Values {
		idx, _ := r.GetString(i, 0)
		cn, _ := r.GetString(i, 1)
		if cols[idx] == nil {
			cols[idx] = map[string]bool{}
		}
		cols[idx][strings.ToLower(cn)] = true
	}
	for _, cs := range cols {
		if cs[strings.ToLower(col)] && !cs[strings.ToLower(shardKey)] {
			return false, nil
		}
	}
	return true, nil
}

// disjointAutoIncrement reports whether the targets' global
// auto_increment settings already give each its own values: one
// increment of at least the number of targets, distinct offsets.
func disjointAutoIncrement(ctx context.Context, p *Plan) bool {
	offsets := map[int64]bool{}
	var inc int64
	for j, tg := range p.Targets {
		c, err := dial(ctx, fmt.Sprintf("targets[%d]", j), tg)
		if err != nil {
			return false
		}
		r, err := c.Execute("SELECT @@global.auto_increment_increment, @@global.auto_increment_offset")
		c.Close()
		if err != nil || len(r.Values) == 0 {
			return false
		}
		i, _ := r.GetInt(0, 0)
		o, _ := r.GetInt(0, 1)
		if (j > 0 && i != inc) || i < int64(len(p.Targets)) || offsets[o%i] {
			return false
		}
		inc = i
		offsets[o%i] = true
	}
	return true
}
