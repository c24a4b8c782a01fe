package event

import (
	"encoding/hex"
	"time"
	"unicode/utf8"
)

// ImageMap returns a row image by column name, with values made readable
// for reports (conflict records, failover reports): text stays text, bytes
// that are not UTF-8 become "0x…" hex, times RFC 3339.
func (t *Table) ImageMap(image []any) map[string]any {
	m := make(map[string]any, len(image))
	for i, v := range image {
		if i < len(t.Columns) {
			m[t.Columns[i].Name] = ReadableValue(v)
		}
	}
	return m
}

// ReadableValue renders one row value for reports.
func ReadableValue(v any) any {
	switch x := v.(type) {
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return "0x" + hex.EncodeToString(x)
	case string:
		if utf8.ValidString(x) {
			return x
		}
		return "0x" + hex.EncodeToString([]byte(x))
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}
