package tablecopy

import (
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Format is how a chunk is written to a target.
type Format uint8

// Formats.
const (
	// FormatLoad writes a chunk as LOAD DATA LOCAL INFILE … REPLACE, the
	// file being the copier's own buffer of tab-separated rows: the
	// server's bulk path, with no SQL to parse per row.
	FormatLoad Format = iota + 1
	// FormatInsert writes a chunk as REPLACE INTO … VALUES (…),(…), for
	// targets that refuse LOCAL INFILE (local_infile=OFF).
	FormatInsert
)

func (f Format) String() string {
	switch f {
	case FormatLoad:
		return "load-data"
	case FormatInsert:
		return "insert"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Rows are read over the binary protocol (a prepared statement), which
// carries FLOAT and DOUBLE as their IEEE bits, integers as integers, and
// DECIMAL, temporal values, strings and BIT as text or bytes; the text
// protocol would print FLOAT with 6 significant digits (16777216 becomes
// 16777200). Both formats write each value so that the target stores
// exactly what the source holds:
//
//	NULL                  \N (load) / NULL (insert)
//	integers              decimal; YEAR as four digits ("0" would load as 2000)
//	FLOAT, DOUBLE         the shortest digits that round-trip the value as a
//	                      double ('g', -1, 64); a FLOAT's double is exact, and
//	                      the server rounds it back to the same float
//	everything else       the bytes as sent: with character_set_results=binary
//	                      a text column's bytes in its own character set,
//	                      loaded with CHARACTER SET binary (no conversion) or
//	                      written as a _binary literal
//
// Both write with REPLACE: a row already on the target (a chunk written
// again after a restart) is replaced by the copy, and a row holding a
// unique value the copied row has (a value that moved between rows while
// the copy ran) is removed; the stream that follows the copy writes it back
// as the source has it (see the package documentation).

// encoding holds one table's per-column encoding and statement heads.
type encoding struct {
	year    []bool
	columns string // quoted column list
	target  string // quoted target table
}

func newEncoding(t *Table) *encoding {
	e := &encoding{year: make([]bool, len(t.Columns)), target: t.QuotedTarget()}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		e.year[i] = c.DataType == "year"
		cols[i] = QuoteIdent(c.Name)
	}
	e.columns = strings.Join(cols, ",")
	return e
}

// loadSQL is the LOAD DATA statement of a chunk in FormatLoad.
func (e *encoding) loadSQL() string {
	return "LOAD DATA LOCAL INFILE 'hamal-chunk' REPLACE INTO TABLE " + e.target +
		` CHARACTER SET binary FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' (` + e.columns + ")"
}

// insertHead starts a chunk's statement in FormatInsert.
func (e *encoding) insertHead() string {
	return "REPLACE INTO " + e.target + " (" + e.columns + ") VALUES "
}

// appendLoadRow appends row as one line of the LOAD DATA file.
func (e *encoding) appendLoadRow(b []byte, row []mysql.FieldValue) []byte {
	for i := range row {
		if i > 0 {
			b = append(b, '\t')
		}
		v := &row[i]
		switch v.Type {
		case mysql.FieldValueTypeNull:
			b = append(b, '\\', 'N')
		case mysql.FieldValueTypeString:
			b = appendLoadEscaped(b, v.AsString())
		default:
			b = e.appendNumber(b, i, v)
		}
	}
	return append(b, '\n')
}

// appendInsertRow appends row as one "(…)" of a REPLACE … VALUES.
func (e *encoding) appendInsertRow(b []byte, row []mysql.FieldValue) []byte {
	b = append(b, '(')
	for i := range row {
		if i > 0 {
			b = append(b, ',')
		}
		v := &row[i]
		switch v.Type {
		case mysql.FieldValueTypeNull:
			b = append(b, "NULL"...)
		case mysql.FieldValueTypeString:
			b = append(b, "_binary'"...)
			b = appendEscaped(b, v.AsString())
			b = append(b, '\'')
		default:
			b = e.appendNumber(b, i, v)
		}
	}
	return append(b, ')')
}

func (e *encoding) appendNumber(b []byte, col int, v *mysql.FieldValue) []byte {
	switch v.Type {
	case mysql.FieldValueTypeSigned:
		if e.year[col] && v.AsInt64() == 0 {
			return append(b, "0000"...)
		}
		return strconv.AppendInt(b, v.AsInt64(), 10)
	case mysql.FieldValueTypeUnsigned:
		if e.year[col] && v.AsUint64() == 0 {
			return append(b, "0000"...)
		}
		return strconv.AppendUint(b, v.AsUint64(), 10)
	case mysql.FieldValueTypeFloat:
		return strconv.AppendFloat(b, v.AsFloat64(), 'g', -1, 64)
	}
	return append(b, v.String()...)
}

// appendLoadEscaped escapes what LOAD DATA's ESCAPED BY '\\' would read
// otherwise: the escape itself, the field and line terminators, and NUL.
func appendLoadEscaped(b, s []byte) []byte {
	for _, c := range s {
		switch c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case 0:
			b = append(b, '\\', '0')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendText appends a value's text: the decimal of an integer, the exact
// digits of a float, the bytes of anything else; a key's stored form.
func appendText(b []byte, v *mysql.FieldValue) []byte {
	switch v.Type {
	case mysql.FieldValueTypeSigned:
		return strconv.AppendInt(b, v.AsInt64(), 10)
	case mysql.FieldValueTypeUnsigned:
		return strconv.AppendUint(b, v.AsUint64(), 10)
	case mysql.FieldValueTypeFloat:
		return strconv.AppendFloat(b, v.AsFloat64(), 'g', -1, 64)
	case mysql.FieldValueTypeString:
		return append(b, v.AsString()...)
	case mysql.FieldValueTypeNull:
		return append(b, "NULL"...)
	}
	return append(b, v.String()...)
}
