package mysql

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
)

// Grants is what SHOW GRANTS lists for the connected account: privileges
// on *.*, on databases (names may be LIKE patterns) and on tables. Column
// privileges and privileges that only come through a role are not read, so
// an account relying on them is reported as lacking the privilege; callers
// say so in their message. It is the one SHOW GRANTS parser: the source
// preflight and the checks of a MySQL sink's account both use it.
type Grants struct {
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

// ParseGrants reads SHOW GRANTS lines.
func ParseGrants(lines []string) Grants {
	g := Grants{global: map[string]bool{}}
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

// ReadGrants runs SHOW GRANTS on conn (the account it is logged in as).
func ReadGrants(conn *client.Conn) (Grants, error) {
	res, err := conn.Execute("SHOW GRANTS")
	if err != nil {
		return Grants{}, err
	}
	var lines []string
	for i := 0; i < res.RowNumber(); i++ {
		s, _ := res.GetString(i, 0)
		lines = append(lines, strings.Clone(s))
	}
	return ParseGrants(lines), nil
}

// User is the account as SHOW GRANTS names it ("`repl`@`%`"), or "" when
// no line named it.
func (g Grants) User() string { return g.user }

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

// privilegeAliases maps a privilege to the names servers also print for it.
var privilegeAliases = map[string][]string{
	"REPLICATION SLAVE":  {"REPLICATION REPLICA"},
	"REPLICATION CLIENT": {"BINLOG MONITOR"}, // MariaDB 10.5+
}

func hasPriv(privs map[string]bool, p string) bool {
	if privs["ALL PRIVILEGES"] || privs["ALL"] || privs[p] {
		return true
	}
	for _, a := range privilegeAliases[p] {
		if privs[a] {
			return true
		}
	}
	return false
}

// Has reports whether priv holds on db.table (table "" or "*": on the
// whole database; db "*": globally).
func (g Grants) Has(priv, db, table string) bool {
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

// Need is one privilege requirement: Privs on DB.Table, and why.
type Need struct {
	Privs     []string
	DB, Table string // "*","*" for global; Table "*" for a database
	Why       string
}

// Missing returns, per requirement, the privileges g lacks, as GRANT
// statements that would fix them.
func (g Grants) Missing(needs []Need) []string {
	var fixes []string
	for _, n := range needs {
		var lack []string
		for _, p := range n.Privs {
			if !g.Has(p, n.DB, n.Table) {
				lack = append(lack, p)
			}
		}
		if len(lack) == 0 {
			continue
		}
		target := "*.*"
		if n.DB != "*" {
			target = "`" + n.DB + "`.*"
			if n.Table != "*" && n.Table != "" {
				target = "`" + n.DB + "`.`" + n.Table + "`"
			}
		}
		user := g.user
		if user == "" {
			user = "<user>"
		}
		fixes = append(fixes, fmt.Sprintf("GRANT %s ON %s TO %s; -- %s", strings.Join(lack, ", "), target, user, n.Why))
	}
	return fixes
}

// SourceNeeds are a source account's least privileges (docs/deploy.md):
// replication, SELECT for table definitions, and with the heartbeat writer
// on, writing <hamalSchema>.heartbeat.
func SourceNeeds(heartbeat bool, hamalSchema string) []Need {
	n := []Need{{Privs: []string{"REPLICATION SLAVE", "REPLICATION CLIENT"}, DB: "*", Table: "*", Why: "read the binlog as a replica and its position"},
		{Privs: []string{"SELECT"}, DB: "*", Table: "*", Why: "read table definitions and unique keys from information_schema"}}
	if heartbeat {
		n = append(n, Need{Privs: []string{"CREATE", "INSERT", "DELETE"}, DB: hamalSchema, Table: "*", Why: "source.heartbeat writes " + hamalSchema + ".heartbeat"})
	}
	return n
}
