package mongo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
)

// HamalDB is the database where sinks keep Hamal's own collections (the
// loop-guard markers); its events are never replicated as data.
const HamalDB = "hamal"

// MarkerColl is the loop-guard marker collection: a sink replaces
// {_id: "<channel>/<slot>", origin: <site>, path: "<site>,…", n: …} in
// hamal.origin_marker in the same transaction as the changes it applies.
const MarkerColl = "origin_marker"

// Event is one decoded change event.
type Event struct {
	// Token is the event's resume token (its _id document).
	Token       bson.Raw
	Op          string // operationType
	ClusterTime bson.Timestamp
	WallTime    time.Time // zero before MongoDB 6.0
	DB, Coll    string
	// TxnID identifies the transaction the event belongs to (lsid and
	// txnNumber); empty outside a multi-document transaction.
	TxnID string
	// Exactly one of the following is set, or none for an event that only
	// moves the position (Hamal's own collections other than the marker).
	Change     *event.Change // insert, update, replace, delete
	DDL        *event.DDL    // drop, rename, dropDatabase
	Invalidate bool
	// Origin is set by a loop-guard marker event: the site it names; Path
	// is the marker's path (sites that applied the transaction, origin
	// first), when it has one.
	Origin string
	Path   []string
}

// Decode turns one raw change event into an Event. The document is
// retained (fullDocument and documentKey point into it); callers pass a
// copy when the cursor reuses its buffer.
func Decode(raw bson.Raw) (Event, error) {
	var ev Event
	tok, err := raw.LookupErr("_id")
	if err != nil {
		return ev, errors.New("change event without _id (resume token)")
	}
	doc, ok := tok.DocumentOK()
	if !ok {
		return ev, fmt.Errorf("change event _id is a %s, not a resume token document", tok.Type)
	}
	ev.Token = doc
	op, ok := raw.Lookup("operationType").StringValueOK()
	if !ok {
		return ev, errors.New("change event without operationType")
	}
	ev.Op = op
	if v, err := raw.LookupErr("clusterTime"); err == nil {
		t, i, ok := v.TimestampOK()
		if !ok {
			return ev, fmt.Errorf("%s event: clusterTime is a %s, not a timestamp", op, v.Type)
		}
		ev.ClusterTime = bson.Timestamp{T: t, I: i}
	}
	if v, err := raw.LookupErr("wallTime"); err == nil {
		if dt, ok := v.DateTimeOK(); ok {
			ev.WallTime = time.UnixMilli(dt).UTC()
		}
	}
	if ns, err := raw.LookupErr("ns"); err == nil {
		nsDoc, ok := ns.DocumentOK()
		if !ok {
			return ev, fmt.Errorf("%s event: ns is not a document", op)
		}
		ev.DB, _ = nsDoc.Lookup("db").StringValueOK()
		ev.Coll, _ = nsDoc.Lookup("coll").StringValueOK()
	}
	if lsid, err := raw.LookupErr("lsid"); err == nil {
		num, err := raw.LookupErr("txnNumber")
		if err != nil {
			return ev, fmt.Errorf("%s event on %s.%s: lsid without txnNumber", op, ev.DB, ev.Coll)
		}
		n, ok := num.AsInt64OK()
		if !ok {
			return ev, fmt.Errorf("%s event on %s.%s: txnNumber is a %s", op, ev.DB, ev.Coll, num.Type)
		}
		ev.TxnID = hex.EncodeToString(lsid.Value) + "/" + strconv.FormatInt(n, 10)
	}
	switch op {
	case "insert", "update", "replace", "delete":
		return ev, decodeChange(raw, &ev)
	case "drop":
		if ev.DB == HamalDB {
			return ev, nil
		}
		if ev.Coll == "" {
			return ev, errors.New("drop event without ns.coll")
		}
		ev.DDL = &event.DDL{Schema: ev.DB, Statement: command(bson.D{{Key: "drop", Value: ev.Coll}})}
	case "rename":
		to, err := raw.LookupErr("to")
		if err != nil {
			return ev, fmt.Errorf("rename event on %s.%s without to", ev.DB, ev.Coll)
		}
		toDoc, _ := to.DocumentOK()
		toDB, _ := toDoc.Lookup("db").StringValueOK()
		toColl, _ := toDoc.Lookup("coll").StringValueOK()
		if toDB == "" || toColl == "" {
			return ev, fmt.Errorf("rename event on %s.%s: to is not {db, coll}", ev.DB, ev.Coll)
		}
		if ev.DB == HamalDB && toDB == HamalDB {
			return ev, nil
		}
		ev.DDL = &event.DDL{Schema: "admin", Statement: command(bson.D{
			{Key: "renameCollection", Value: ev.DB + "." + ev.Coll}, {Key: "to", Value: toDB + "." + toColl}})}
	case "dropDatabase":
		if ev.DB == HamalDB {
			return ev, nil
		}
		ev.DDL = &event.DDL{Schema: ev.DB, Statement: command(bson.D{{Key: "dropDatabase", Value: 1}})}
	case "invalidate":
		ev.Invalidate = true
	default:
		return ev, fmt.Errorf("change event of operationType %q on %s.%s: not supported (the stream is opened without showExpandedEvents, so only insert, update, replace, delete, drop, rename, dropDatabase and invalidate are expected)",
			op, ev.DB, ev.Coll)
	}
	return ev, nil
}

// command renders a DDL as the MongoDB command that repeats it, in
// relaxed extended JSON: {"drop":"users"}, {"renameCollection":"app.a",
// "to":"app.b"} (run against admin), {"dropDatabase":1}.
func command(d bson.D) string {
	b, err := bson.MarshalExtJSON(d, false, false)
	if err != nil {
		return fmt.Sprint(d) // strings and an int always marshal
	}
	return string(b)
}

func decodeChange(raw bson.Raw, ev *Event) error {
	where := fmt.Sprintf("%s event on %s.%s", ev.Op, ev.DB, ev.Coll)
	if ev.DB == "" || ev.Coll == "" {
		return fmt.Errorf("%s: ns without db or coll", where)
	}
	keyVal, err := raw.LookupErr("documentKey")
	if err != nil {
		return fmt.Errorf("%s: no documentKey", where)
	}
	key, ok := keyVal.DocumentOK()
	if !ok {
		return fmt.Errorf("%s: documentKey is not a document", where)
	}
	id, err := key.LookupErr("_id")
	if err != nil {
		return fmt.Errorf("%s: documentKey has no _id", where)
	}
	full, hasFull := document(raw, "fullDocument")
	before, hasBefore := document(raw, "fullDocumentBeforeChange")
	if ev.DB == HamalDB {
		if ev.Coll == MarkerColl && hasFull {
			ev.Origin, _ = full.Lookup("origin").StringValueOK()
			if p, ok := full.Lookup("path").StringValueOK(); ok {
				ev.Path = loopguard.ParsePath(p)
			}
		}
		return nil // Hamal's own data: never replicated
	}
	c := &event.Change{Namespace: ev.DB + "." + ev.Coll, Keys: [][]byte{IDKey(id)}}
	switch {
	case ev.Op == "delete":
		c.Op = event.OpDelete
		c.Before = []any{key}
		if hasBefore {
			c.Before = []any{before}
		}
	case !hasFull && ev.Op == "update":
		// updateLookup found no document: it was deleted after this
		// update, and a delete event follows. The document's state at the
		// lookup is "absent", so the change is a delete by key.
		c.Op = event.OpDelete
		c.Before = []any{key}
	case !hasFull:
		return fmt.Errorf("%s: no fullDocument", where)
	default:
		c.Op = event.OpUpdate
		if ev.Op == "insert" {
			c.Op = event.OpInsert
		}
		if fid, err := full.LookupErr("_id"); err != nil || !fid.Equal(id) {
			return fmt.Errorf("%s: fullDocument._id differs from documentKey._id", where)
		}
		c.After = []any{full}
		if hasBefore {
			c.Before = []any{before}
		}
	}
	ev.Change = c
	return nil
}

// document returns a field holding a document; a missing or null field is
// not one.
func document(raw bson.Raw, field string) (bson.Raw, bool) {
	v, err := raw.LookupErr(field)
	if err != nil {
		return nil, false
	}
	d, ok := v.DocumentOK()
	return d, ok
}

// IDKey is the conflict key of a document: its _id's BSON type and value
// bytes, the canonical form the MongoDB sink folds changes by.
func IDKey(id bson.RawValue) []byte {
	return append([]byte{byte(id.Type)}, id.Value...)
}
