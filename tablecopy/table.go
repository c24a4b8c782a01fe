package tablecopy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
)

// Table is a source table as the copy reads it: the columns it copies and
// the key it walks.
type Table struct {
	Schema, Name string
	// Target is "schema.table" on the targets; empty means Schema.Name.
	Target string
	// Columns are the copied columns in ordinal order. Generated columns
	// are left out: the target computes them.
	Columns []Column
	Key     Key
	// Rows is the server's estimate (information_schema.TABLES.TABLE_ROWS).
	Rows int64
}

// Column is one copied column.
type Column struct {
	Name string
	// DataType is information_schema's DATA_TYPE, lower case ("int",
	// "float", "varchar", "year", ...).
	DataType string
	// Charset is the column's character set ("utf8mb4", "latin1"), "" for
	// columns that hold no text (numbers, dates, binary strings).
	Charset  string
	Nullable bool
}

// Key is the unique key the copy walks: the primary key, or the first
// unique key whose columns are all NOT NULL.
type Key struct {
	Index   string // "PRIMARY" or the unique index's name
	Columns []KeyColumn
}

// KeyColumn is one column of a Key, in index order.
type KeyColumn struct {
	Name string
	// At is the column's index in Table.Columns.
	At   int
	kind literalKind
	cs   string // character set of a text column
}

// Ints reports whether the key's first column is an integer, so the copy
// can split the table into ranges of it.
func (k Key) Ints() bool { return len(k.Columns) > 0 && k.Columns[0].kind == literalInt }

// Names returns the key's column names in index order.
func (k Key) Names() []string {
	out := make([]string, len(k.Columns))
	for i, c := range k.Columns {
		out[i] = c.Name
	}
	return out
}

// String is "schema.table".
func (t *Table) String() string { return t.Schema + "." + t.Name }

// TargetName is "schema.table" on the targets.
func (t *Table) TargetName() string {
	if t.Target != "" {
		return t.Target
	}
	return t.String()
}

// Quoted is the source table's qualified, quoted name.
func (t *Table) Quoted() string { return QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name) }

// QuotedTarget is the target table's qualified, quoted name.
func (t *Table) QuotedTarget() string { return QuoteName(t.TargetName()) }

// ColumnIndex returns the index of the column named name (case-insensitive,
// as MySQL compares column names), or -1.
func (t *Table) ColumnIndex(name string) int {
	return slices.IndexFunc(t.Columns, func(c Column) bool { return strings.EqualFold(c.Name, name) })
}

// ErrNoKey is matched (errors.Is) by Describe's error for a table with
// neither a primary key nor a NOT NULL unique key.
var ErrNoKey = errors.New("table has no primary key and no NOT NULL unique key")

// ErrNoTable is matched by Describe's error for a table that does not exist.
var ErrNoTable = errors.New("table does not exist")

var (
	intTypes = map[string]bool{"tinyint": true, "smallint": true, "mediumint": true, "int": true, "bigint": true, "year": true}
	binTypes = map[string]bool{"binary": true, "varbinary": true, "tinyblob": true, "blob": true, "mediumblob": true,
		"longblob": true, "bit": true, "geometry": true, "point": true, "linestring": true, "polygon": true,
		"multipoint": true, "multilinestring": true, "multipolygon": true, "geometrycollection": true}
)

// Describe reads schema.name's columns, key and row estimate from
// information_schema on c.
func Describe(c *client.Conn, schema, name string) (*Table, error) {
	r, err := c.Execute("SELECT COLUMN_NAME, LOWER(DATA_TYPE), IFNULL(CHARACTER_SET_NAME,''), IS_NULLABLE, UPPER(EXTRA) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=" +
		QuoteString(schema) + " AND TABLE_NAME=" + QuoteString(name) + " ORDER BY ORDINAL_POSITION")
	if err != nil {
		return nil, fmt.Errorf("describe %s.%s: %w", schema, name, err)
	}
	if len(r.Values) == 0 {
		return nil, fmt.Errorf("%s.%s: %w", schema, name, ErrNoTable)
	}
	t := &Table{Schema: schema, Name: name}
	for i := range r.Values {
		col := Column{Name: str(r, i, 0), DataType: str(r, i, 1), Charset: strings.ToLower(str(r, i, 2)), Nullable: str(r, i, 3) == "YES"}
		if col.Charset == "binary" {
			col.Charset = ""
		}
		if extra := str(r, i, 4); strings.Contains(extra, "VIRTUAL") || strings.Contains(extra, "STORED") || strings.Contains(extra, "PERSISTENT") {
			continue // generated: the target computes it
		}
		t.Columns = append(t.Columns, col)
	}
	// Unique indexes and their columns; PRIMARY first, then by name.
	r, err = c.Execute("SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=" +
		QuoteString(schema) + " AND TABLE_NAME=" + QuoteString(name) + " AND NON_UNIQUE=0" +
		" ORDER BY INDEX_NAME<>'PRIMARY', INDEX_NAME, SEQ_IN_INDEX")
	if err != nil {
		return nil, fmt.Errorf("describe %s.%s: keys: %w", schema, name, err)
	}
	var cur Key
	usable := true
	pick := func() bool {
		if cur.Index != "" && usable && len(cur.Columns) > 0 {
			t.Key = cur
			return true
		}
		return false
	}
	for i := range r.Values {
		index, colName := str(r, i, 0), str(r, i, 1)
		if index != cur.Index {
			if pick() {
				break
			}
			cur, usable = Key{Index: index}, true
		}
		at := t.ColumnIndex(colName)
		if at < 0 || (index != "PRIMARY" && t.Columns[at].Nullable) {
			usable = false // a generated or nullable column: not a row identity the walk can use
			continue
		}
		cur.Columns = append(cur.Columns, KeyColumn{Name: t.Columns[at].Name, At: at, kind: kindOf(t.Columns[at]), cs: t.Columns[at].Charset})
	}
	if t.Key.Index == "" {
		pick()
	}
	if t.Key.Index == "" {
		return nil, fmt.Errorf("%s.%s: %w: the chunked copy walks a key; add a primary key", schema, name, ErrNoKey)
	}
	est, err := c.Execute("SELECT IFNULL(TABLE_ROWS,0) FROM information_schema.TABLES WHERE TABLE_SCHEMA=" +
		QuoteString(schema) + " AND TABLE_NAME=" + QuoteString(name))
	if err != nil {
		return nil, fmt.Errorf("describe %s.%s: row estimate: %w", schema, name, err)
	}
	if len(est.Values) > 0 {
		t.Rows, _ = strconv.ParseInt(str(est, 0, 0), 10, 64)
	}
	return t, nil
}

func kindOf(c Column) literalKind {
	switch {
	case intTypes[c.DataType]:
		return literalInt
	case binTypes[c.DataType]:
		return literalBinary
	case c.Charset != "":
		return literalText
	}
	return literalQuoted
}

func str(r interface {
	GetString(row, column int) (string, error)
}, row, col int) string {
	s, _ := r.GetString(row, col)
	return strings.Clone(s)
}

// QuoteIdent returns a backquoted identifier.
func QuoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// QuoteName quotes "schema.table" as `schema`.`table`.
func QuoteName(name string) string {
	schema, table, _ := strings.Cut(name, ".")
	return QuoteIdent(schema) + "." + QuoteIdent(table)
}

// QuoteString returns s as a SQL string literal with backslash escapes
// (sessions of this package never set NO_BACKSLASH_ESCAPES).
func QuoteString(s string) string { return "'" + string(appendEscaped(nil, []byte(s))) + "'" }

// appendEscaped appends s with the escapes of a quoted SQL string.
func appendEscaped(b, s []byte) []byte {
	for _, c := range s {
		switch c {
		case 0:
			b = append(b, '\\', '0')
		case '\'':
			b = append(b, '\\', '\'')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case 0x1a:
			b = append(b, '\\', 'Z')
		default:
			b = append(b, c)
		}
	}
	return b
}
