package tablecopy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// Segment is one key range of one table on one source, copied in key
// order, and how far its copy got. LastKey is the last key copied (each
// key column's text as bytes, base64 in JSON so binary keys survive): a
// restart resumes after it. The JSON form is what reshard's migration
// state has always stored.
type Segment struct {
	Source int    `json:"source"`
	Table  string `json:"table"`
	Lo     *int64 `json:"lo,omitempty"` // bounds of the key's first (integer) column, inclusive
	Hi     *int64 `json:"hi,omitempty"`
	// Last is the last key of a single-column key as states before
	// composite keys wrote it; read, never written.
	Last    string   `json:"last,omitempty"`
	LastKey [][]byte `json:"last_key,omitempty"`
	Begun   bool     `json:"begun"`
	Done    bool     `json:"done"`
	Rows    int64    `json:"rows"`
}

// LastKeyText is the last key copied, one string per key column.
func (s *Segment) LastKeyText() []string {
	if s.LastKey == nil && s.Last != "" {
		return []string{s.Last}
	}
	out := make([]string, len(s.LastKey))
	for i, v := range s.LastKey {
		out[i] = string(v)
	}
	return out
}

// where is the WHERE clause of the segment's next chunk: after the last
// key copied (or from the segment's low bound), up to its high bound.
func (s *Segment) where(k Key) string {
	var w []string
	if last := s.LastKeyText(); s.Begun && len(last) == len(k.Columns) {
		w = append(w, k.After(last))
	} else if s.Lo != nil {
		w = append(w, QuoteIdent(k.Columns[0].Name)+" >= "+strconv.FormatInt(*s.Lo, 10))
	}
	if s.Hi != nil {
		w = append(w, QuoteIdent(k.Columns[0].Name)+" <= "+strconv.FormatInt(*s.Hi, 10))
	}
	if len(w) == 0 {
		return ""
	}
	return " WHERE (" + strings.Join(w, ") AND (") + ")"
}

// openEnd is the high bound of a table's last range: rows inserted above
// MAX while the copy runs still fall in a range.
const openEnd = 1<<63 - 1

// Split divides t into at most parts key ranges for parallel copying,
// reading the bounds on c: a key whose first column is an integer is split
// into ranges of equal width between its MIN and MAX (the last one open
// above), any other into one range. An empty table gives one segment,
// already done.
func Split(c *client.Conn, t *Table, source, parts int) ([]Segment, error) {
	name := t.String()
	if !t.Key.Ints() || parts <= 1 {
		return []Segment{{Source: source, Table: name}}, nil
	}
	first := QuoteIdent(t.Key.Columns[0].Name)
	r, err := c.Execute("SELECT MIN(" + first + "), MAX(" + first + ") FROM " + t.Quoted())
	if err != nil {
		return nil, fmt.Errorf("key bounds of %s: %w", name, err)
	}
	if r.Values[0][0].Type == mysql.FieldValueTypeNull {
		return []Segment{{Source: source, Table: name, Done: true}}, nil
	}
	lo, err1 := strconv.ParseInt(string(appendText(nil, &r.Values[0][0])), 10, 64)
	hi, err2 := strconv.ParseInt(string(appendText(nil, &r.Values[0][1])), 10, 64)
	if err1 != nil || err2 != nil {
		// An unsigned key above the int64 range: one segment walks it.
		return []Segment{{Source: source, Table: name}}, nil
	}
	step := (hi-lo)/int64(parts) + 1
	var segs []Segment
	for n := int64(0); n < int64(parts); n++ {
		a := lo + n*step
		if a > hi {
			break
		}
		b := min(a+step-1, hi)
		if n == int64(parts)-1 || b >= hi {
			b = openEnd
		}
		segs = append(segs, Segment{Source: source, Table: name, Lo: &a, Hi: &b})
		if b == openEnd {
			break
		}
	}
	// Keys below MIN (inserted while the copy runs) go to the first range.
	segs[0].Lo = nil
	return segs, nil
}
