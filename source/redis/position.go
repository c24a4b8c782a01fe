package redis

import (
	"encoding/json"
	"fmt"
	"strings"

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
// Offset, since a resumed stream does not repeat the SELECT before it. Snapshot is set on the Txns of a full sync (the
// RDB): they all carry the +FULLRESYNC offset, and resuming at one repeats
// the full sync, since an RDB cannot be resumed half way.
type Position struct {
	ReplID   string `json:"replid"`
	Offset   int64  `json:"offset"`
	Epoch    string `json:"epoch"`
	DB       int    `json:"db"` // database selected in the stream at Offset
	Snapshot bool   `json:"snapshot,omitempty"`
}

// String renders the position for logs and errors.
func (p Position) String() string {
	s := fmt.Sprintf("replid %s offset %d", p.ReplID, p.Offset)
	if p.Snapshot {
		s += " (full sync)"
	}
	return s
}

// EncodePosition encodes p as compact JSON, readable in status output:
// {"replid":"8c1…","offset":1234,"epoch":"8c1…:0"}.
func EncodePosition(p Position) event.Position {
	b, err := json.Marshal(p)
	if err != nil {
		// Two strings, an integer and a bool always marshal.
		return event.Position(fmt.Sprintf(`{"replid":%q}`, p.ReplID))
	}
	return event.Position(b)
}

// DecodePosition decodes a position written by EncodePosition.
func DecodePosition(ep event.Position) (Position, error) {
	var p Position
	if len(ep) == 0 {
		return p, fmt.Errorf("decode redis position: empty")
	}
	dec := json.NewDecoder(strings.NewReader(string(ep)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Position{}, fmt.Errorf("decode redis position %q: %w", string(ep), err)
	}
	if len(p.ReplID) != 40 || p.Offset < 0 || p.Epoch == "" {
		return Position{}, fmt.Errorf("decode redis position %q: not a redis replication position (replid of 40 characters, offset, epoch)", string(ep))
	}
	return p, nil
}
