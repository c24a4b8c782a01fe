package mysql

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// systemSchemas are never replicated as data, whatever the filters say:
// the server's own schemas; Hamal's (Config.HamalSchema: heartbeat and
// origin markers) is added per filter.
var systemSchemas = map[string]bool{
	"mysql":              true,
	"information_schema": true,
	"performance_schema": true,
	"sys":                true,
}

const defaultHamalSchema = "hamal"

// filter decides which tables' rows and DDL are forwarded.
//
// Rules, in order:
//  1. Tables in system schemas (mysql, information_schema,
//     performance_schema, sys, and Hamal's own) are never forwarded.
//  2. A table matching any Exclude glob is dropped.
//  3. With no Include globs every other table is forwarded; otherwise only
//     tables matching some Include glob.
//
// Globs use path.Match syntax on "schema.table" ("app.*", "app.user_?").
type filter struct {
	include, exclude []string
	hamal            string // Hamal's schema, lower case
}

func newFilter(include, exclude []string, hamalSchema string) (*filter, error) {
	for _, list := range [][]string{include, exclude} {
		for _, g := range list {
			if _, err := path.Match(g, ""); err != nil {
				return nil, fmt.Errorf("bad table glob %q: %w", g, err)
			}
		}
	}
	if hamalSchema == "" {
		hamalSchema = defaultHamalSchema
	}
	return &filter{include: include, exclude: exclude, hamal: strings.ToLower(hamalSchema)}, nil
}

// system reports whether schema is a server schema or Hamal's own.
func (f *filter) system(schema string) bool {
	lower := strings.ToLower(schema)
	return systemSchemas[lower] || lower == f.hamal
}

// matchTable reports whether rows and DDL of schema.table are forwarded.
func (f *filter) matchTable(schema, table string) bool {
	if f.system(schema) {
		return false
	}
	name := schema + "." + table
	for _, g := range f.exclude {
		if ok, _ := path.Match(g, name); ok {
			return false
		}
	}
	if len(f.include) == 0 {
		return true
	}
	for _, g := range f.include {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// matchSchema decides statements that name a schema but no table (CREATE
// DATABASE, CREATE VIEW, CREATE PROCEDURE, …): forwarded when the schema is
// not empty or a system schema, is not excluded as a whole by an Exclude
// glob whose table part is "*", and (with Include globs) matches the schema
// part of some Include glob.
func (f *filter) matchSchema(schema string) bool {
	if schema == "" || f.system(schema) {
		return false
	}
	for _, g := range f.exclude {
		s, t, _ := strings.Cut(g, ".")
		if t != "*" {
			continue
		}
		if ok, _ := path.Match(s, schema); ok {
			return false
		}
	}
	if len(f.include) == 0 {
		return true
	}
	for _, g := range f.include {
		s, _, _ := strings.Cut(g, ".")
		if ok, _ := path.Match(s, schema); ok {
			return true
		}
	}
	return false
}

// tableRef names a table a DDL statement acts on.
type tableRef struct{ Schema, Name string }

// ddlTarget is what a DDL statement acts on: the tables it names (CREATE,
// ALTER, DROP, RENAME, TRUNCATE TABLE; CREATE/DROP INDEX), or else the schema
// it applies to (the database of CREATE/ALTER/DROP DATABASE, otherwise the
// statement's default schema).
type ddlTarget struct {
	Tables []tableRef
	Schema string
}

// namePattern is a table or schema name: backquoted, or plain; with
// ansiNamePattern also double-quoted (sql_mode ANSI_QUOTES).
const (
	namePattern     = "(?:`(?:[^`]|``)+`|[0-9A-Za-z_$\\x80-\\xff]+)"
	ansiNamePattern = "(?:`(?:[^`]|``)+`|\"(?:[^\"]|\"\")+\"|[0-9A-Za-z_$\\x80-\\xff]+)"
)

// ddlSyntax is the DDL grammar the filter reads names with, under one
// quoting mode.
type ddlSyntax struct {
	tableHeads  []*regexp.Regexp
	database    *regexp.Regexp
	leadingName *regexp.Regexp
}

func newDDLSyntax(name string) *ddlSyntax {
	return &ddlSyntax{
		tableHeads: []*regexp.Regexp{
			regexp.MustCompile(`(?is)^CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`),
			regexp.MustCompile(`(?is)^ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?`),
			regexp.MustCompile(`(?is)^TRUNCATE\s+(?:TABLE\s+)?`),
			regexp.MustCompile(`(?is)^(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:ONLINE\s+|OFFLINE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?|DROP\s+(?:ONLINE\s+|OFFLINE\s+)?INDEX\s+(?:IF\s+EXISTS\s+)?)` + name + `\s+(?:USING\s+\w+\s+)?ON\s+`),
		},
		database:    regexp.MustCompile(`(?is)^(?:CREATE|ALTER|DROP)\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(` + name + `)`),
		leadingName: regexp.MustCompile(`^\s*(` + name + `)(?:\s*\.\s*(` + name + `))?`),
	}
}

var (
	plainSyntax    = newDDLSyntax(namePattern)
	ansiSyntax     = newDDLSyntax(ansiNamePattern)
	ddlDropTables  = regexp.MustCompile(`(?is)^DROP\s+(?:TEMPORARY\s+)?TABLES?\s+(?:IF\s+EXISTS\s+)?`)
	ddlRename      = regexp.MustCompile(`(?is)^RENAME\s+TABLES?\s+`)
	blockComment   = regexp.MustCompile(`(?s)/\*.*?\*/`)
	lineComment    = regexp.MustCompile(`(?m)(?:--\s|#).*$`)
	leadingComma   = regexp.MustCompile(`^\s*,`)
	leadingTo      = regexp.MustCompile(`(?i)^\s+TO\s+`)
	accountCommand = regexp.MustCompile(`(?i)^(?:GRANT|REVOKE|(?:CREATE|DROP|ALTER|RENAME)\s+(?:USER|ROLE)|SET\s+(?:PASSWORD|DEFAULT\s+ROLE)|FLUSH|INSTALL|UNINSTALL)\b`)
)

func syntaxOf(mode sqlMode) *ddlSyntax {
	if mode.ansiQuotes() {
		return ansiSyntax
	}
	return plainSyntax
}

// stripComments removes SQL comments, so that "/* generated by server */"
// after a DROP TABLE does not hide the table list.
func stripComments(stmt string) string {
	stmt = blockComment.ReplaceAllString(stmt, " ")
	stmt = lineComment.ReplaceAllString(stmt, " ")
	return strings.TrimSpace(stmt)
}

func unquote(name string) string {
	if len(name) >= 2 && (name[0] == '`' || name[0] == '"') && name[len(name)-1] == name[0] {
		q := name[:1]
		return strings.ReplaceAll(name[1:len(name)-1], q+q, q)
	}
	return name
}

// readName reads one possibly qualified, possibly quoted table name.
func (g *ddlSyntax) readName(s, defaultSchema string) (ref tableRef, rest string, ok bool) {
	m := g.leadingName.FindStringSubmatchIndex(s)
	if m == nil {
		return tableRef{}, s, false
	}
	first := unquote(s[m[2]:m[3]])
	if m[4] >= 0 {
		return tableRef{Schema: first, Name: unquote(s[m[4]:m[5]])}, s[m[1]:], true
	}
	return tableRef{Schema: defaultSchema, Name: first}, s[m[1]:], true
}

// readNameList reads "a, b.c, `d`" up to the first thing that is not a name.
func (g *ddlSyntax) readNameList(s, defaultSchema string) []tableRef {
	var refs []tableRef
	for {
		ref, rest, ok := g.readName(s, defaultSchema)
		if !ok {
			return refs
		}
		refs = append(refs, ref)
		loc := leadingComma.FindStringIndex(rest)
		if loc == nil {
			return refs
		}
		s = rest[loc[1]:]
	}
}

// parseDDLTarget extracts what a DDL statement acts on, reading names as
// mode quotes them. Unqualified table names resolve to defaultSchema (the
// QueryEvent's schema). A statement that acts on tables whose names it
// cannot read is an error: deciding on the default schema instead would
// skip (or forward) it for the wrong reason.
func parseDDLTarget(stmt, defaultSchema string, mode sqlMode) (ddlTarget, error) {
	g := syntaxOf(mode)
	s := stripComments(stmt)
	unreadable := func(what string) (ddlTarget, error) {
		return ddlTarget{}, fmt.Errorf("cannot read the table names of %s %.200q (written under sql_mode %s): "+
			"the statement is neither forwarded nor skipped; this is a defect of the DDL filter, report it with the statement", what, stmt, mode)
	}
	for _, head := range g.tableHeads {
		if loc := head.FindStringIndex(s); loc != nil {
			if ref, _, ok := g.readName(s[loc[1]:], defaultSchema); ok {
				return ddlTarget{Tables: []tableRef{ref}}, nil
			}
			return unreadable("the table statement")
		}
	}
	if loc := ddlDropTables.FindStringIndex(s); loc != nil {
		if refs := g.readNameList(s[loc[1]:], defaultSchema); len(refs) > 0 {
			return ddlTarget{Tables: refs}, nil
		}
		return unreadable("DROP TABLE")
	}
	if loc := ddlRename.FindStringIndex(s); loc != nil {
		var refs []tableRef
		rest := s[loc[1]:]
		for {
			from, r, ok := g.readName(rest, defaultSchema)
			if !ok {
				break
			}
			to := leadingTo.FindStringIndex(r)
			if to == nil {
				break
			}
			dst, r2, ok := g.readName(r[to[1]:], defaultSchema)
			if !ok {
				break
			}
			refs = append(refs, from, dst)
			comma := leadingComma.FindStringIndex(r2)
			if comma == nil {
				break
			}
			rest = r2[comma[1]:]
		}
		if len(refs) > 0 {
			return ddlTarget{Tables: refs}, nil
		}
		return unreadable("RENAME TABLE")
	}
	if m := g.database.FindStringSubmatch(s); m != nil {
		return ddlTarget{Schema: unquote(m[1])}, nil
	}
	return ddlTarget{Schema: defaultSchema}, nil
}

// forwardDDL decides whether a DDL statement is replicated:
//   - account and server statements (GRANT, CREATE USER, FLUSH, …) never are;
//   - a statement naming tables is forwarded when any of them passes
//     matchTable (so a RENAME from an excluded to an included name is
//     forwarded, and DROP TABLE a, b drops both on the target);
//   - any other statement is forwarded when its schema passes matchSchema.
//
// A statement naming tables it cannot read (parseDDLTarget) is an error.
func (f *filter) forwardDDL(stmt, defaultSchema string, mode sqlMode) (bool, error) {
	if accountCommand.MatchString(stripComments(stmt)) {
		return false, nil
	}
	target, err := parseDDLTarget(stmt, defaultSchema, mode)
	if err != nil {
		return false, err
	}
	if len(target.Tables) > 0 {
		for _, t := range target.Tables {
			if f.matchTable(t.Schema, t.Name) {
				return true, nil
			}
		}
		return false, nil
	}
	return f.matchSchema(target.Schema), nil
}
