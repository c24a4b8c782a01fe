package mysql

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// Position is the decoded resume position of the MySQL/MariaDB source: the
// GTID set of everything read so far (MariaDB: one domain-server-seq per
// domain, as @@gtid_binlog_pos prints it; MySQL: an executed GTID set) and
// the binlog file and offset just after the last event group. GTID, when
// set, is what a resume uses; File and Pos are a fallback for sources
// without GTIDs and are shown to operators.
type Position struct {
	GTID string `json:"gtid,omitempty"`
	File string `json:"file,omitempty"`
	Pos  uint32 `json:"pos,omitempty"`
}

// String renders the position for logs and errors, e.g.
// "gtid 0-1-42 (bin.000002:1234)".
func (p Position) String() string {
	var b strings.Builder
	if p.GTID != "" || p.File == "" {
		fmt.Fprintf(&b, "gtid %q", p.GTID)
	}
	if p.File != "" {
		if b.Len() > 0 {
			b.WriteString(" (")
			fmt.Fprintf(&b, "%s:%d)", p.File, p.Pos)
		} else {
			fmt.Fprintf(&b, "%s:%d", p.File, p.Pos)
		}
	}
	return b.String()
}

// EncodePosition encodes p as compact JSON, readable in status output:
// {"gtid":"0-1-42","file":"bin.000002","pos":1234}. It runs once per
// transaction, so the common case (nothing to escape) is built by hand;
// the bytes are exactly json.Marshal's.
func EncodePosition(p Position) event.Position {
	if jsonPlain(p.GTID) && jsonPlain(p.File) {
		b := make([]byte, 0, len(p.GTID)+len(p.File)+40)
		b = append(b, '{')
		if p.GTID != "" {
			b = append(b, `"gtid":"`...)
			b = append(b, p.GTID...)
			b = append(b, '"')
		}
		if p.File != "" {
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = append(b, `"file":"`...)
			b = append(b, p.File...)
			b = append(b, '"')
		}
		if p.Pos != 0 {
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = append(b, `"pos":`...)
			b = strconv.AppendUint(b, uint64(p.Pos), 10)
		}
		return event.Position(append(b, '}'))
	}
	b, err := json.Marshal(p)
	if err != nil {
		// A struct of two strings and an integer always marshals.
		return event.Position(fmt.Sprintf(`{"file":%q}`, p.File))
	}
	return event.Position(b)
}

// jsonPlain reports whether json.Marshal writes s verbatim between quotes:
// printable ASCII without the characters it escapes.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// formatGTIDSet renders set as its String method does. A MariaDB set of
// one domain, the usual case, is built without fmt: this runs once per
// transaction.
func formatGTIDSet(set gomysql.GTIDSet) string {
	if m, ok := set.(*gomysql.MariadbGTIDSet); ok && len(m.Sets) == 1 {
		for _, g := range m.Sets {
			if g.DomainID == 0 && g.ServerID == 0 && g.SequenceNumber == 0 {
				break // String renders it as ""
			}
			var buf [64]byte
			b := strconv.AppendUint(buf[:0], uint64(g.DomainID), 10)
			b = append(b, '-')
			b = strconv.AppendUint(b, uint64(g.ServerID), 10)
			b = append(b, '-')
			b = strconv.AppendUint(b, g.SequenceNumber, 10)
			return string(b)
		}
	}
	return set.String()
}

// DecodePosition decodes a position written by EncodePosition.
func DecodePosition(ep event.Position) (Position, error) {
	var p Position
	if len(ep) == 0 {
		return p, fmt.Errorf("decode mysql position: empty")
	}
	dec := json.NewDecoder(strings.NewReader(string(ep)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Position{}, fmt.Errorf("decode mysql position %q: %w", string(ep), err)
	}
	if p.GTID == "" && p.File == "" {
		return Position{}, fmt.Errorf("decode mysql position %q: neither gtid nor file set", string(ep))
	}
	return p, nil
}

// After reports whether p lies beyond q in the binlog, by file name (the
// server numbers them in order, zero-padded) and offset.
func (p Position) After(q Position) bool {
	if p.File != q.File {
		return p.File > q.File
	}
	return p.Pos > q.Pos
}
