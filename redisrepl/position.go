package redisrepl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/hamal-replication/hamal/event"
)

// Position is the decoded resume position of the Redis source.
//
// ReplID and Offset name the last byte of the master's replication stream
// that was read (the master's master_replid and master_repl_offset): a
// resume sends PSYNC ReplID Offset+1. Epoch names the full synchronisation
// this stream descends from ("<replid>:<offset>" of its +FULLRESYNC); it
// survives +CONTINUE with a new replid (a master restart or failover), so
// offsets of one epoch are comparable and the sink's offset fence compares
// only within an epoch. DB is the database the stream has selected at
// Offset, since a resumed stream does not repeat the SELECT before it.
// Snapshot is set on the Txns of a full sync (the RDB): they all carry the
// +FULLRESYNC offset, and resuming at one repeats the full sync, since an
// RDB cannot be resumed half way.
type Position struct {
	ReplID   string `json:"replid"`
	Offset   int64  `json:"offset"`
	Epoch    string `json:"epoch"`
	DB       int    `json:"db"` // database selected in the stream at Offset
	Snapshot bool   `json:"snapshot,omitempty"`
}

// String renders the position for logs and errors.
func (p Position) String() string {
	s := "replid " + p.ReplID + " offset " + strconv.FormatInt(p.Offset, 10)
	if p.Snapshot {
		s += " (full sync)"
	}
	return s
}

// plain reports whether s needs no escaping in a JSON string.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// EncodePosition encodes p as compact JSON, the bytes json.Marshal writes:
// {"replid":"8c1…","offset":1234,"epoch":"8c1…:0","db":0}.
func EncodePosition(p Position) event.Position {
	return NewEncoder(p.ReplID, p.Epoch).encode(p.Offset, p.DB, p.Snapshot)
}

// Encoder encodes the positions of one stream (one replid and epoch):
// the constant part is built once, so a position costs one allocation.
// An Encoder is immutable and safe for concurrent use.
type Encoder struct {
	head []byte // {"replid":"…","offset":
	mid  []byte // ,"epoch":"…","db":
	// slow is set when replid or epoch need escaping: encoding/json then.
	slow          bool
	replid, epoch string
}

// NewEncoder returns the Encoder of positions of replid in epoch.
func NewEncoder(replid, epoch string) *Encoder {
	e := &Encoder{replid: replid, epoch: epoch}
	if !plain(replid) || !plain(epoch) {
		e.slow = true
		return e
	}
	e.head = []byte(`{"replid":"` + replid + `","offset":`)
	e.mid = []byte(`,"epoch":"` + epoch + `","db":`)
	return e
}

// Encode returns the stream position at offset with db selected.
func (e *Encoder) Encode(offset int64, db int) event.Position { return e.encode(offset, db, false) }

// Snapshot returns the position of a full sync's Txns at offset.
func (e *Encoder) Snapshot(offset int64, db int) event.Position { return e.encode(offset, db, true) }

func (e *Encoder) encode(offset int64, db int, snapshot bool) event.Position {
	if e.slow {
		b, err := json.Marshal(Position{ReplID: e.replid, Offset: offset, Epoch: e.epoch, DB: db, Snapshot: snapshot})
		if err != nil {
			// Two strings, two integers and a bool always marshal.
			return event.Position(fmt.Sprintf(`{"replid":%q}`, e.replid))
		}
		return b
	}
	b := make([]byte, 0, len(e.head)+len(e.mid)+20+20+len(`,"snapshot":true}`))
	b = append(b, e.head...)
	b = strconv.AppendInt(b, offset, 10)
	b = append(b, e.mid...)
	b = strconv.AppendInt(b, int64(db), 10)
	if snapshot {
		b = append(b, `,"snapshot":true`...)
	}
	return append(b, '}')
}

// DecodePosition decodes a position written by EncodePosition.
func DecodePosition(ep event.Position) (Position, error) {
	if len(ep) == 0 {
		return Position{}, fmt.Errorf("decode redis position: empty")
	}
	p, ok := decodeFast(ep)
	if !ok {
		var err error
		if p, err = decodeJSON(ep); err != nil {
			return Position{}, err
		}
	}
	if len(p.ReplID) != 40 || p.Offset < 0 || p.Epoch == "" {
		return Position{}, fmt.Errorf("decode redis position %q: not a redis replication position (replid of 40 characters, offset, epoch)", string(ep))
	}
	return p, nil
}

// decodeJSON decodes through encoding/json: exactly one object, of
// Position's fields only.
func decodeJSON(ep event.Position) (Position, error) {
	var p Position
	dec := json.NewDecoder(bytes.NewReader(ep))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Position{}, fmt.Errorf("decode redis position %q: %w", string(ep), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Position{}, fmt.Errorf("decode redis position %q: data after the position", string(ep))
	}
	return p, nil
}

// decodeFast reads exactly what Encoder writes; anything else (spaces,
// escapes, another field order) is left to encoding/json.
func decodeFast(b []byte) (Position, bool) {
	var p Position
	var ok bool
	if b, ok = cutPrefix(b, `{"replid":"`); !ok {
		return p, false
	}
	if p.ReplID, b, ok = plainString(b); !ok {
		return p, false
	}
	if b, ok = cutPrefix(b, `,"offset":`); !ok {
		return p, false
	}
	if p.Offset, b, ok = integer(b); !ok {
		return p, false
	}
	if b, ok = cutPrefix(b, `,"epoch":"`); !ok {
		return p, false
	}
	if p.Epoch, b, ok = plainString(b); !ok {
		return p, false
	}
	if b, ok = cutPrefix(b, `,"db":`); !ok {
		return p, false
	}
	var db int64
	if db, b, ok = integer(b); !ok || int64(int(db)) != db {
		return p, false
	}
	p.DB = int(db)
	if rest, found := cutPrefix(b, `,"snapshot":true`); found {
		p.Snapshot, b = true, rest
	}
	return p, string(b) == "}"
}

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// plainString reads a JSON string's body up to its closing quote; a
// backslash (an escape) sends the caller to encoding/json.
func plainString(b []byte) (string, []byte, bool) {
	for i, c := range b {
		switch c {
		case '"':
			return string(b[:i]), b[i+1:], true
		case '\\':
			return "", b, false
		}
	}
	return "", b, false
}

// integer reads a JSON integer (an optional minus, digits, no leading 0).
func integer(b []byte) (int64, []byte, bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == start || i-start > 18 || (b[start] == '0' && i-start > 1) {
		return 0, b, false
	}
	var n int64
	for _, c := range b[start:i] {
		n = n*10 + int64(c-'0') // at most 18 digits: no overflow
	}
	if start == 1 {
		n = -n
	}
	return n, b[i:], true
}
