package mongo

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hamal-replication/hamal/event"
)

// Position is the decoded resume position of the MongoDB source.
//
// Token is the resume token (the event's _id document, as BSON; JSON
// shows it in base64) of the last event of the last Txn, or a post-batch
// resume token read when the stream was idle. A resume opens the stream
// with resumeAfter: Token, or startAfter: Token when StartAfter is set
// (Token is then an invalidate event's, which resumeAfter refuses).
// Without a token, ClusterTime ("<seconds>.<increment>") starts the stream
// at that operation time; with one, it is informational.
type Position struct {
	Token       []byte `json:"token,omitempty"`
	ClusterTime string `json:"cluster_time,omitempty"`
	StartAfter  bool   `json:"start_after,omitempty"`
	// Snapshot marks the documents of an initial sync: a resume from it
	// repeats the copy (a copy cannot be resumed half way).
	Snapshot bool `json:"snapshot,omitempty"`
}

// String renders the position for logs and errors.
func (p Position) String() string {
	var b strings.Builder
	if p.ClusterTime != "" {
		b.WriteString("cluster time " + p.ClusterTime)
	}
	if len(p.Token) > 0 {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString("resume token " + tokenString(p.Token))
	}
	if b.Len() == 0 {
		return "(none)"
	}
	return b.String()
}

// tokenString shows a token's _data (a hex string on MongoDB 4.2+).
func tokenString(tok []byte) string {
	if v, err := bson.Raw(tok).LookupErr("_data"); err == nil {
		if s, ok := v.StringValueOK(); ok {
			return s
		}
	}
	return bson.Raw(tok).String()
}

// EncodePosition encodes p as compact JSON.
func EncodePosition(p Position) event.Position {
	b, err := json.Marshal(p)
	if err != nil {
		return event.Position(`{}`) // a []byte, two strings and a bool always marshal
	}
	return event.Position(b)
}

// DecodePosition decodes a position written by EncodePosition.
func DecodePosition(ep event.Position) (Position, error) {
	var p Position
	if len(ep) == 0 {
		return p, fmt.Errorf("decode mongo position: empty")
	}
	dec := json.NewDecoder(strings.NewReader(string(ep)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Position{}, fmt.Errorf("decode mongo position %q: %w", string(ep), err)
	}
	if len(p.Token) > 0 {
		if err := bson.Raw(p.Token).Validate(); err != nil {
			return Position{}, fmt.Errorf("decode mongo position %q: resume token is not a BSON document: %w", string(ep), err)
		}
	}
	if p.ClusterTime != "" {
		if _, err := ParseClusterTime(p.ClusterTime); err != nil {
			return Position{}, fmt.Errorf("decode mongo position %q: %w", string(ep), err)
		}
	}
	if len(p.Token) == 0 && p.ClusterTime == "" {
		return Position{}, fmt.Errorf("decode mongo position %q: neither a resume token nor a cluster time", string(ep))
	}
	return p, nil
}

// ParseClusterTime parses "<seconds>.<increment>".
func ParseClusterTime(s string) (bson.Timestamp, error) {
	sec, inc, ok := strings.Cut(s, ".")
	t, err1 := strconv.ParseUint(sec, 10, 32)
	i, err2 := strconv.ParseUint(inc, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return bson.Timestamp{}, fmt.Errorf("cluster time %q: want <seconds>.<increment>, e.g. 1700000000.1", s)
	}
	return bson.Timestamp{T: uint32(t), I: uint32(i)}, nil
}

// FormatClusterTime renders a timestamp as "<seconds>.<increment>".
func FormatClusterTime(ts bson.Timestamp) string {
	return strconv.FormatUint(uint64(ts.T), 10) + "." + strconv.FormatUint(uint64(ts.I), 10)
}
