package tablecopy

import (
	"encoding/hex"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// literalKind is how a key value is written back into a WHERE clause.
type literalKind uint8

const (
	literalInt    literalKind = iota + 1 // bare decimal
	literalBinary                        // X'…': the bytes, compared as binary, as the column is
	literalText                          // _charset X'…': the column's bytes in its own character set
	literalQuoted                        // '…': numbers, dates and times, whose text is ASCII
)

// Key values travel as the bytes the server sent for them on a session of
// this package (SetupSource: character_set_results=binary), so a text key
// is in its column's character set, whatever the connection's. Writing it
// back as _charset X'…' keeps it exact, and the comparison still uses the
// column's collation (a literal yields to a column), which is the order
// ORDER BY walks in.

// literal renders the key's i-th value for a WHERE clause.
func (k Key) literal(i int, v string) string {
	c := k.Columns[i]
	switch c.kind {
	case literalInt:
		return v
	case literalBinary:
		return "X'" + hex.EncodeToString([]byte(v)) + "'"
	case literalText:
		return "_" + c.charset() + " X'" + hex.EncodeToString([]byte(v)) + "'"
	}
	return QuoteString(v)
}

// charset is the introducer's character set name of a text key column.
func (c KeyColumn) charset() string {
	if c.cs == "" {
		return "utf8mb4"
	}
	return c.cs
}

// List is the quoted column list, for SELECT and ORDER BY.
func (k Key) List() string {
	q := make([]string, len(k.Columns))
	for i, c := range k.Columns {
		q[i] = QuoteIdent(c.Name)
	}
	return strings.Join(q, ",")
}

// After is the condition "key tuple > vals"; AtMost is "key tuple <= vals".
//
// The row-constructor form `(a,b) > (x,y)` means the same, but MariaDB's
// range optimizer does not use the key's index for it, so every chunk
// would scan the table from its start. The expanded form below has a
// leading `a >= x` the optimizer turns into an index range:
//
//	a >= x AND (a > x OR (a = x AND b > y))
func (k Key) After(vals []string) string { return k.tupleCmp(vals, ">", ">", ">=") }

// AtMost is the condition "key tuple <= vals".
func (k Key) AtMost(vals []string) string { return k.tupleCmp(vals, "<", "<=", "<=") }

func (k Key) tupleCmp(vals []string, strict, last, lead string) string {
	n := len(k.Columns)
	col := func(i int) string { return QuoteIdent(k.Columns[i].Name) }
	expr := col(n-1) + " " + last + " " + k.literal(n-1, vals[n-1])
	for i := n - 2; i >= 0; i-- {
		lit := k.literal(i, vals[i])
		expr = col(i) + " " + strict + " " + lit + " OR (" + col(i) + " = " + lit + " AND (" + expr + "))"
	}
	if n == 1 {
		return expr
	}
	return col(0) + " " + lead + " " + k.literal(0, vals[0]) + " AND (" + expr + ")"
}

// RangeWhere is the WHERE clause (with its keyword, or "") for keys in
// (lo, hi]; a nil bound is open.
func (k Key) RangeWhere(lo, hi []string) string {
	var w []string
	if lo != nil {
		w = append(w, k.After(lo))
	}
	if hi != nil {
		w = append(w, k.AtMost(hi))
	}
	if len(w) == 0 {
		return ""
	}
	return " WHERE (" + strings.Join(w, ") AND (") + ")"
}

// Values returns the key of a row read on a session of this package: from
// a row of the table's columns when fromRow is set, else from a row that
// starts with the key's own columns (SELECT <k.List()>, ...).
func (k Key) Values(row []mysql.FieldValue, fromRow bool) []string {
	out := make([]string, len(k.Columns))
	for i, c := range k.Columns {
		j := i
		if fromRow {
			j = c.At
		}
		out[i] = string(appendText(nil, &row[j]))
	}
	return out
}

// ShowKey names a key in reports: the value itself for a one-column key,
// "(a, b)" for a composite one.
func ShowKey(vals []string) string {
	if len(vals) == 1 {
		return vals[0]
	}
	return "(" + strings.Join(vals, ", ") + ")"
}
