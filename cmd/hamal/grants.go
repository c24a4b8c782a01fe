package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// grants is what SHOW GRANTS lists for the connected account: privileges
// on *.*, on databases (names may be LIKE patterns) and on tables. Column
// privileges and privileges that only come through a role are not read, so
// an account relying on them is reported as lacking the privilege; the
// message says so.
type grants struct {
	user   string
	global map[string]bool
	dbs    []grantOn
	tables []grantOn
}

type grantOn struct {
	db    *regexp.Regexp // LIKE pattern on the database name
	table string         // "" for a database grant
	privs map[string]bool
}

var grantLine = regexp.MustCompile("(?is)^GRANT\\s+(.+?)\\s+ON\\s+(?:(?:TABLE|FUNCTION|PROCEDURE|PACKAGE(?: BODY)?)\\s+)?(\\S+)\\s+TO\\s+(\\S+)")

// parseGrants reads SHOW GRANTS lines.
func parseGrants(lines []string) grants {
	g := grants{global: map[string]bool{}}
	for _, line := range lines {
		m := grantLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue // a role grant ("GRANT role TO user") or anything else
		}
		if g.user == "" {
			g.user = m[3]
		}
		privs := map[string]bool{}
		for _, p := range splitPrivileges(m[1]) {
			privs[p] = true
		}
		db, table, _ := strings.Cut(m[2], ".")
		db, table = unquoteIdent(db), unquoteIdent(table)
		switch {
		case db == "*" && table == "*":
			for p := range privs {
				g.global[p] = true
			}
		case table == "*":
			g.dbs = append(g.dbs, grantOn{db: likePattern(db), privs: privs})
		default:
			g.tables = append(g.tables, grantOn{db: likePattern(db), table: table, privs: privs})
		}
	}
	return g
}

// splitPrivileges splits "SELECT, INSERT (a, b), REPLICATION SLAVE" at top
// level commas; column lists are dropped with their privilege (column
// privileges do not cover a whole table).
func splitPrivileges(s string) []string {
	var out []string
	depth, start := 0, 0
	add := func(p string) {
		p = strings.ToUpper(strings.Join(strings.Fields(p), " "))
		if p != "" && !strings.Contains(p, "(") {
			out = append(out, p)
		}
	}
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				add(s[start:i])
				start = i + 1
			}
		}
	}
	add(s[start:])
	return out
}

func unquoteIdent(s string) string {
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	}
	return s
}

// likePattern turns a database name from SHOW GRANTS into a matcher: '%'
// and '_' are wildcards unless escaped with a backslash.
func likePattern(name string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '\\' && i+1 < len(name):
			i++
			b.WriteString(regexp.QuoteMeta(string(name[i])))
		case c == '%':
			b.WriteString(".*")
		case c == '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// aliases maps a privilege to the names servers also print for it.
var aliases = map[string][]string{
	"REPLICATION SLAVE":  {"REPLICATION REPLICA"},
	"REPLICATION CLIENT": {"BINLOG MONITOR"}, // MariaDB 10.5+
}

func hasPriv(privs map[string]bool, p string) bool {
	if privs["ALL PRIVILEGES"] || privs["ALL"] || privs[p] {
		return true
	}
	for _, a := range aliases[p] {
		if privs[a] {
			return true
		}
	}
	return false
}

// has reports whether priv holds on db.table (table "" or "*": on the
// whole database; db "*": globally).
func (g grants) has(priv, db, table string) bool {
	if hasPriv(g.global, priv) {
		return true
	}
	if db == "*" {
		return false
	}
	for _, d := range g.dbs {
		if d.db.MatchString(db) && hasPriv(d.privs, priv) {
			return true
		}
	}
	if table == "" || table == "*" {
		return false
	}
	for _, t := range g.tables {
		if t.table == table && t.db.MatchString(db) && hasPriv(t.privs, priv) {
			return true
		}
	}
	return false
}

// need is one privilege requirement: privs on db.table, and why.
type need struct {
	privs     []string
	db, table string // "*","*" for global; table "*" for a database
	why       string
}

// missing returns, per requirement, the privileges g lacks, as GRANT
// statements that would fix them.
func (g grants) missing(needs []need) []string {
	var fixes []string
	for _, n := range needs {
		var lack []string
		for _, p := range n.privs {
			if !g.has(p, n.db, n.table) {
				lack = append(lack, p)
			}
		}
		if len(lack) == 0 {
			continue
		}
		target := "*.*"
		if n.db != "*" {
			target = "`" + n.db + "`.*"
			if n.table != "*" && n.table != "" {
				target = "`" + n.db + "`.`" + n.table + "`"
			}
		}
		user := g.user
		if user == "" {
			user = "<user>"
		}
		fixes = append(fixes, fmt.Sprintf("GRANT %s ON %s TO %s; -- %s", strings.Join(lack, ", "), target, user, n.why))
	}
	return fixes
}

// showGrants connects as the configured account and reads its grants.
func showGrants(ctx context.Context, addr, user, password string, opts ...client.Option) (grants, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := client.ConnectWithContext(ctx, addr, user, password, "", 10*time.Second, opts...)
	if err != nil {
		return grants{}, err
	}
	defer conn.Close()
	res, err := conn.Execute("SHOW GRANTS")
	if err != nil {
		return grants{}, err
	}
	var lines []string
	for i := 0; i < res.RowNumber(); i++ {
		s, _ := res.GetString(i, 0)
		lines = append(lines, s)
	}
	return parseGrants(lines), nil
}

// sourceNeeds are the source account's least privileges (docs/deploy.md).
func sourceNeeds(heartbeat bool, hamalSchema string) []need {
	n := []need{{privs: []string{"REPLICATION SLAVE", "REPLICATION CLIENT"}, db: "*", table: "*", why: "read the binlog as a replica and its position"},
		{privs: []string{"SELECT"}, db: "*", table: "*", why: "read table definitions and unique keys from information_schema"}}
	if heartbeat {
		n = append(n, need{privs: []string{"CREATE", "INSERT", "DELETE"}, db: hamalSchema, table: "*", why: "source.heartbeat writes " + hamalSchema + ".heartbeat"})
	}
	return n
}

// sinkNeeds are the target account's least privileges for the schemas the
// channel replicates into, and for Hamal's own tables when the loop guard
// is on (sink.site set).
func sinkNeeds(schemas []string, hamalSchema string, site bool) []need {
	var n []need
	for _, s := range schemas {
		n = append(n, need{privs: []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, db: s, table: "*", why: "apply rows"},
			need{privs: []string{"CREATE", "DROP", "ALTER", "INDEX"}, db: s, table: "*", why: "apply replicated DDL"})
	}
	if !site {
		return n
	}
	return append(n, need{privs: []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE"}, db: hamalSchema, table: "*",
		why: "origin markers, conflicts and unsynced owners in " + hamalSchema + ".* (sink.site)"})
}
