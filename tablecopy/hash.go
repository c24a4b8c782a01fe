package tablecopy

import "strings"

// RowHash is an SQL expression for one row's hash over cols, computed by
// the server on either side of a copy: the first 64 bits of MD5 over
// every column's exact value, '|'-joined, NULL as 'N', as an unsigned
// integer.
//
// "Exact" is what a copy can lose: a column's bytes in its own character
// set (CAST AS BINARY, so a charset conversion shows); numbers, dates and
// times by their full text on sessions in UTC (SetupSource's time zone);
// and FLOAT by its value as a DOUBLE, since a FLOAT's own text has six
// significant digits (16777216 and 16777200 would hash alike). The
// comparison is as exact as the copy must be.
func RowHash(cols []Column) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		v := QuoteIdent(c.Name)
		if c.DataType == "float" {
			v = "(" + v + " + 0E0)" // FLOAT + DOUBLE is the FLOAT's exact value as a DOUBLE
		}
		parts[i] = "IFNULL(HEX(CAST(" + v + " AS BINARY)),'N')"
	}
	return "CAST(CONV(LEFT(MD5(CONCAT_WS('|'," + strings.Join(parts, ",") + ")),16),16,10) AS UNSIGNED)"
}
