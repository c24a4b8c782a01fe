package mysql

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/hamal-replication/hamal/event"
)

// This file records conflicts: the rows of <hamal>.conflicts and the
// readable JSON images they hold (text as UTF-8, other bytes as base64).

type conflictRecord struct {
	entry   int32
	applied bool
}

// record inserts the conflicts of one table into <hamal>.conflicts, with
// the target's image of each row as JSON, and counts them.
func (a *applier) record(p *tablePlan, records []conflictRecord) error {
	// The target images, read before anything of this table is written.
	existing := make(map[int]string, len(records))
	q := []byte{}
	for i, rec := range records {
		e := &a.st.entries[rec.entry]
		if i > 0 {
			q = append(q, " UNION ALL "...)
		}
		q = append(q, "(SELECT "...)
		q = strconv.AppendInt(q, int64(i), 10)
		q = append(q, ',')
		q = p.appendJSONObject(q)
		q = append(q, " FROM "...)
		q = append(q, p.quotedTable()...)
		q = append(q, " WHERE "...)
		var err error
		if q, err = p.appendKeyMatch(q, e.image); err != nil {
			return &stmtError{table: p.ns, err: err}
		}
		q = append(q, ')')
	}
	r, err := a.query(string(q))
	if err != nil {
		return &stmtError{table: p.ns, err: fmt.Errorf("read conflicting rows: %w", err), server: true}
	}
	for i := range r.Values {
		n, _ := r.GetInt(i, 0)
		img, _ := r.GetString(i, 1)
		existing[int(n)] = img
	}

	var ins strings.Builder
	ins.WriteString("INSERT INTO " + a.s.conflictsTable() +
		" (channel,table_name,row_key,change_kind,policy,resolution,incoming_origin,existing_origin,incoming_image,existing_image,source_position) VALUES ")
	for i, rec := range records {
		e := &a.st.entries[rec.entry]
		if i > 0 {
			ins.WriteByte(',')
		}
		kind, incoming := "upsert", imageJSON(tableOf(e.txn, p), e.image, p)
		if e.del {
			kind, incoming = "delete", "null"
		}
		resolution := "kept"
		if rec.applied {
			resolution = "applied"
		}
		img, ok := existing[i]
		existingLit := "NULL"
		if ok {
			existingLit = quoteString(img)
		}
		fmt.Fprintf(&ins, "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
			a.s.quotedChannel, quoteString(p.ns), quoteString(keyText(e.image, p)), quoteString(kind),
			quoteString(p.conflict.rule.Policy), quoteString(resolution), quoteString(originOf(e.txn)), quoteString(a.s.cfg.Site),
			quoteString(incoming), existingLit, quoteString(e.txn.Pos.String()))
	}
	if _, err := a.query(ins.String()); err != nil {
		return &stmtError{table: a.s.cfg.HamalSchema + ".conflicts", err: fmt.Errorf("record conflicts: %w", err), server: true}
	}
	a.s.conflicts.count.Add(uint64(len(records)))
	a.s.log.Warn("conflicts detected", "table", p.ns, "count", len(records), "policy", p.conflict.rule.Policy, "first_position", records[0].String(a))
	return nil
}

func (r conflictRecord) String(a *applier) string { return a.st.entries[r.entry].txn.Pos.String() }

// imageJSON renders the image of a row of table p for the conflicts
// table: a JSON object of column → value, numbers as numbers, text as a
// string (text in another charset decoded to UTF-8: latin1 is cp1252, as
// in MySQL), and bytes that are not text (binary columns, text that is not
// valid in its charset) as {"base64": "…"}, so any row can be recorded and
// read back exactly.
func imageJSON(tbl *event.Table, image []any, p *tablePlan) string {
	m := make(map[string]any, len(image))
	for i, v := range image {
		name := strconv.Itoa(i)
		if tbl != nil && i < len(tbl.Columns) {
			name = tbl.Columns[i].Name
		}
		var cp *columnPlan
		if i < len(p.cols) {
			cp = &p.cols[i]
		}
		m[name] = jsonValue(v, cp)
	}
	out, err := json.Marshal(m)
	if err != nil { // a type json cannot encode: record it as text
		return strconv.Quote(fmt.Sprint(image))
	}
	return string(out)
}

// jsonValue is one value of imageJSON.
func jsonValue(v any, cp *columnPlan) any {
	var raw []byte
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		raw = x
	case string:
		raw = []byte(x)
	case json.RawMessage:
		raw = x
	default:
		return v
	}
	if cp != nil {
		switch cp.kind {
		case kindBinary:
			return map[string]string{"base64": base64.StdEncoding.EncodeToString(raw)}
		case kindCharsetHex:
			if text, ok := decodeCharset(cp.charset, raw); ok {
				return text
			}
		}
	}
	if utf8.Valid(raw) {
		return string(raw)
	}
	return map[string]string{"base64": base64.StdEncoding.EncodeToString(raw)}
}

// decodeCharset converts text of a single-byte charset the images can
// name to UTF-8; ok is false for charsets it does not convert.
func decodeCharset(charset string, raw []byte) (string, bool) {
	var cm *charmap.Charmap
	switch charset {
	case "latin1":
		cm = charmap.Windows1252 // MySQL's latin1 is cp1252
	case "latin2":
		cm = charmap.ISO8859_2
	case "cp1251":
		cm = charmap.Windows1251
	case "cp1250":
		cm = charmap.Windows1250
	case "ascii":
		if utf8.Valid(raw) {
			return string(raw), true
		}
		return "", false
	default:
		return "", false
	}
	out, err := cm.NewDecoder().Bytes(raw)
	if err != nil {
		return "", false
	}
	return string(out), true
}

// tableOf returns the source table of the rows of p in txn.
func tableOf(txn *event.Txn, p *tablePlan) *event.Table {
	for i := range txn.Changes {
		if c := &txn.Changes[i]; c.Namespace == p.ns && c.Table != nil {
			return c.Table
		}
	}
	return nil
}

// keyText renders the row key as name=value pairs.
func keyText(image []any, p *tablePlan) string {
	parts := make([]string, len(p.keyCols))
	for i, k := range p.keyCols {
		parts[i] = fmt.Sprintf("%s=%v", strings.Trim(p.cols[k].quotedName, "`"), event.ReadableValue(image[k]))
	}
	return strings.Join(parts, ",")
}
