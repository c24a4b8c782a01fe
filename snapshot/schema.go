package snapshot

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/tablecopy"
)

// definition is what of a table's definition the copy depends on: the
// columns (name, type, character set and collation, nullability,
// generated or not) in order, and the unique keys. Defaults, comments,
// secondary indexes, the engine and AUTO_INCREMENT do not change what a
// copied row holds, and their text differs between server versions, so
// they are not compared.
type definition struct {
	columns []string // one line per column
	unique  []string // one line per unique key, sorted
}

var intWidth = regexp.MustCompile(`^(tinyint|smallint|mediumint|int|bigint)\(\d+\)`)

// readDefinition reads schema.name's definition on c; nil when the table
// does not exist.
func readDefinition(c *client.Conn, schema, name string) (*definition, error) {
	r, err := c.Execute("SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), IFNULL(CHARACTER_SET_NAME,''), IFNULL(COLLATION_NAME,''), IS_NULLABLE, UPPER(EXTRA) " +
		"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=" + tablecopy.QuoteString(schema) + " AND TABLE_NAME=" + tablecopy.QuoteString(name) +
		" ORDER BY ORDINAL_POSITION")
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s.%s: %w", schema, name, err)
	}
	if r.RowNumber() == 0 {
		return nil, nil
	}
	d := &definition{}
	for i := 0; i < r.RowNumber(); i++ {
		col, typ, cs, coll, null, extra := get(r, i, 0), get(r, i, 1), get(r, i, 2), get(r, i, 3), get(r, i, 4), get(r, i, 5)
		typ = intWidth.ReplaceAllString(typ, "$1") // MySQL 8 prints no display width
		line := fmt.Sprintf("column %s %s", tablecopy.QuoteIdent(strings.ToLower(col)), typ)
		if cs != "" {
			line += " CHARACTER SET " + cs + " COLLATE " + coll
		}
		if null == "NO" {
			line += " NOT NULL"
		}
		if strings.Contains(extra, "VIRTUAL") || strings.Contains(extra, "STORED") || strings.Contains(extra, "PERSISTENT") {
			line += " GENERATED"
		}
		d.columns = append(d.columns, line)
	}
	r, err = c.Execute("SELECT INDEX_NAME, GROUP_CONCAT(LOWER(COLUMN_NAME), IFNULL(CONCAT('(', SUB_PART, ')'), '') ORDER BY SEQ_IN_INDEX) " +
		"FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=" + tablecopy.QuoteString(schema) + " AND TABLE_NAME=" + tablecopy.QuoteString(name) +
		" AND NON_UNIQUE=0 GROUP BY INDEX_NAME")
	if err != nil {
		return nil, fmt.Errorf("read the keys of %s.%s: %w", schema, name, err)
	}
	for i := 0; i < r.RowNumber(); i++ {
		kind := "unique key"
		if get(r, i, 0) == "PRIMARY" {
			kind = "primary key"
		}
		d.unique = append(d.unique, kind+" ("+get(r, i, 1)+")")
	}
	slices.Sort(d.unique)
	return d, nil
}

// diff lists how target differs from source, one phrase each.
func (source *definition) diff(target *definition) []string {
	var out []string
	for i := 0; i < max(len(source.columns), len(target.columns)); i++ {
		switch {
		case i >= len(target.columns):
			out = append(out, "the target lacks "+source.columns[i])
		case i >= len(source.columns):
			out = append(out, "the target has an extra "+target.columns[i])
		case source.columns[i] != target.columns[i]:
			out = append(out, fmt.Sprintf("column %d is %q on the source, %q on the target", i+1, source.columns[i], target.columns[i]))
		}
	}
	for _, k := range source.unique {
		if !slices.Contains(target.unique, k) {
			out = append(out, "the target lacks the "+k)
		}
	}
	for _, k := range target.unique {
		if !slices.Contains(source.unique, k) {
			out = append(out, "the target has an extra "+k)
		}
	}
	return out
}

// showCreate returns SHOW CREATE TABLE's statement for schema.name.
func showCreate(c *client.Conn, schema, name string) (string, error) {
	r, err := c.Execute("SHOW CREATE TABLE " + tablecopy.QuoteIdent(schema) + "." + tablecopy.QuoteIdent(name))
	if err != nil {
		return "", err
	}
	return get(r, 0, 1), nil
}

// showCreateDatabase returns the statement creating schema with the
// source's default character set, as CREATE DATABASE IF NOT EXISTS.
func showCreateDatabase(c *client.Conn, schema string) (string, error) {
	r, err := c.Execute("SHOW CREATE DATABASE " + tablecopy.QuoteIdent(schema))
	if err != nil {
		return "", err
	}
	stmt := get(r, 0, 1)
	if rest, ok := strings.CutPrefix(stmt, "CREATE DATABASE "); ok && !strings.HasPrefix(rest, "IF NOT EXISTS") {
		stmt = "CREATE DATABASE IF NOT EXISTS " + rest
	}
	return stmt, nil
}

// hasSchema reports whether the server has the database.
func hasSchema(c *client.Conn, schema string) (bool, error) {
	r, err := c.Execute("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=" + tablecopy.QuoteString(schema))
	if err != nil {
		return false, err
	}
	return get(r, 0, 0) != "0", nil
}

// hasRows reports whether schema.name holds a row.
func hasRows(c *client.Conn, schema, name string) (bool, error) {
	r, err := c.Execute("SELECT 1 FROM " + tablecopy.QuoteIdent(schema) + "." + tablecopy.QuoteIdent(name) + " LIMIT 1")
	if err != nil {
		return false, err
	}
	return r.RowNumber() > 0, nil
}

func get(r interface {
	GetString(row, column int) (string, error)
}, row, col int) string {
	s, _ := r.GetString(row, col)
	return strings.Clone(s)
}
