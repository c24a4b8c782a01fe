package reshard

import (
	"encoding/hex"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// pkey is a table's primary key as the keyset copy and verify walk it: one
// or more columns, in the index's order, compared as a tuple.
type pkey struct {
	cols []string // column names, in PRIMARY KEY order
	ints []bool   // integer columns take bare literals, the rest quoted
	bins []bool   // binary-string columns take hex literals (bytes exactly)
	idx  []int    // each column's index in tableInfo.columns
}

// list is the quoted column list, for SELECT and ORDER BY.
func (k pkey) list() string {
	q := make([]string, len(k.cols))
	for i, c := range k.cols {
		q[i] = quoteIdent(c)
	}
	return strings.Join(q, ",")
}

func (k pkey) literal(i int, v string) string {
	switch {
	case k.ints[i]:
		return v
	case i < len(k.bins) && k.bins[i]:
		// A quoted literal is text in the session's utf8mb4 and may not
		// carry arbitrary bytes; X'..' does, and compares as binary, as
		// the column does.
		return "X'" + hex.EncodeToString([]byte(v)) + "'"
	}
	return quoteString(v)
}

// after is the condition "key tuple > vals"; atMost is "key tuple <= vals".
//
// The row-constructor form `(a,b) > (x,y)` means the same, but MariaDB's
// range optimizer does not use the primary key for it, so every chunk
// would scan the table from its start. The expanded form below has a
// leading `a >= x` the optimizer turns into an index range:
//
//	a >= x AND (a > x OR (a = x AND b > y))
func (k pkey) after(vals []string) string { return k.tupleCmp(vals, ">", ">", ">=") }

func (k pkey) atMost(vals []string) string { return k.tupleCmp(vals, "<", "<=", "<=") }

func (k pkey) tupleCmp(vals []string, strict, last, lead string) string {
	n := len(k.cols)
	col := func(i int) string { return quoteIdent(k.cols[i]) }
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

// rangeWhere is the WHERE clause (with its keyword, or "") for keys in
// (lo, hi]; a nil bound is open.
func (k pkey) rangeWhere(lo, hi []string) string {
	var w []string
	if lo != nil {
		w = append(w, k.after(lo))
	}
	if hi != nil {
		w = append(w, k.atMost(hi))
	}
	if len(w) == 0 {
		return ""
	}
	return " WHERE (" + strings.Join(w, ") AND (") + ")"
}

// values returns the key of a text-protocol row (columns in tableInfo order
// when idx is k.idx, or the key's own columns first when idx is nil).
func (k pkey) values(row []gomysql.FieldValue, fromRow bool) []string {
	out := make([]string, len(k.cols))
	for i := range k.cols {
		j := i
		if fromRow {
			j = k.idx[i]
		}
		out[i] = fieldText(&row[j])
	}
	return out
}

// show names a key in reports: the value itself for a one-column key,
// "(a, b)" for a composite one.
func showKey(vals []string) string {
	if len(vals) == 1 {
		return vals[0]
	}
	return "(" + strings.Join(vals, ", ") + ")"
}

func fieldText(v *gomysql.FieldValue) string {
	if v.Type == gomysql.FieldValueTypeString {
		return string(v.AsString())
	}
	return v.String()
}
