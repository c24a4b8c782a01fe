package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
)

// Barriers of a MongoDB source (source/mongo) arrive as DDL Txns whose
// statement is the command that repeats them, in relaxed extended JSON, run
// against DDL.Schema:
//
//	{"drop":"orders"}                                  (schema: the database)
//	{"renameCollection":"app.a","to":"app.b"}          (schema: admin)
//	{"dropDatabase":1}                                 (schema: the database)
//
// Anything else (a MySQL source's SQL, other commands) is refused by name.
//
// Replays converge. The pipeline persists the checkpoint right after a
// barrier, but not atomically with it, so a barrier can be applied twice.
// Each applied barrier's position is recorded in hamal.applied_ddl (the
// last ddlFenceSize of them, per channel) right after it ran; a barrier
// found there is skipped. Between the command and that record a crash can
// still repeat it, which the commands tolerate:
//
//   - drop / dropDatabase of something already gone: nothing to do
//     (NamespaceNotFound is success);
//   - renameCollection whose source is gone: done already (or the source
//     collection never had a document on the target); skipped.
//
// A rename whose target exists while its source exists too cannot be a
// replay (the record would have said so): on the source the rename
// succeeded, so the target's collection is replaced (dropTarget), as the
// source's was.

// Server error codes the barrier commands tolerate or act on.
const (
	codeNamespaceNotFound = 26
	codeNamespaceExists   = 48
	codeNotImplemented    = 238 // FerretDB, for options it lacks
)

// ddlFenceSize is how many applied barrier positions are remembered per
// channel; a replay repeats at most the barriers after the checkpoint.
const ddlFenceSize = 32

// FenceColl is the collection (in HamalDB) recording applied barriers.
const FenceColl = "applied_ddl"

// barrierCommand is a parsed barrier statement.
type barrierCommand struct {
	kind     string // drop, renameCollection, dropDatabase
	db       string // database the command runs against
	coll     string // drop: the collection
	from, to string // renameCollection: db.coll names
}

// parseBarrier reads a DDL Txn's statement as one of the commands a MongoDB
// source emits.
func parseBarrier(ddl *event.DDL) (barrierCommand, error) {
	var cmd barrierCommand
	if ddl == nil || strings.TrimSpace(ddl.Statement) == "" {
		return cmd, errors.New("DDL Txn without a statement")
	}
	var d bson.D
	if err := bson.UnmarshalExtJSON([]byte(ddl.Statement), false, &d); err != nil || len(d) == 0 {
		return cmd, fmt.Errorf("DDL %q cannot be applied to MongoDB (only the drop, renameCollection and dropDatabase commands of a MongoDB source are); apply the matching change by hand and resume", ddl.Statement)
	}
	cmd.kind, cmd.db = d[0].Key, ddl.Schema
	str := func(key string) string {
		for _, e := range d {
			if e.Key == key {
				s, _ := e.Value.(string)
				return s
			}
		}
		return ""
	}
	switch cmd.kind {
	case "drop":
		cmd.coll = str("drop")
		if cmd.db == "" || cmd.coll == "" {
			return cmd, fmt.Errorf("DDL %q: drop needs a collection name and the database as its schema", ddl.Statement)
		}
	case "dropDatabase":
		if cmd.db == "" {
			return cmd, fmt.Errorf("DDL %q: dropDatabase needs the database as its schema", ddl.Statement)
		}
	case "renameCollection":
		cmd.from, cmd.to, cmd.db = str("renameCollection"), str("to"), "admin"
		for _, ns := range []string{cmd.from, cmd.to} {
			if db, coll, ok := strings.Cut(ns, "."); !ok || db == "" || coll == "" {
				return cmd, fmt.Errorf("DDL %q: renameCollection needs db.collection names, got %q", ddl.Statement, ns)
			}
		}
	default:
		return cmd, fmt.Errorf("DDL %q: command %q cannot be applied to MongoDB (only drop, renameCollection and dropDatabase are); apply it by hand and resume", ddl.Statement, cmd.kind)
	}
	for _, db := range []string{cmd.db, nsDB(cmd.from), nsDB(cmd.to)} {
		if db == HamalDB {
			return cmd, fmt.Errorf("DDL %q touches Hamal's own database %q, which is never replicated", ddl.Statement, HamalDB)
		}
	}
	return cmd, nil
}

func nsDB(ns string) string {
	db, _, _ := strings.Cut(ns, ".")
	return db
}

// applyBarrier runs a barrier's command unless the fence says it ran.
func (s *Sink) applyBarrier(ctx context.Context, txn *event.Txn) error {
	cmd, err := parseBarrier(txn.DDL)
	if err != nil {
		return fmt.Errorf("apply barrier at %s: %w", txn.Pos, err)
	}
	stmt := txn.DDL.Statement
	pos := txn.Pos.String()
	fence := s.client.Database(HamalDB).Collection(FenceColl)
	applied, err := s.fenced(ctx, fence)
	if err != nil {
		return s.barrierError(ctx, txn, stmt, fmt.Errorf("read %s.%s: %w", HamalDB, FenceColl, err))
	}
	if slices.Contains(applied, pos) {
		s.log.Info("barrier already applied (replay); skipped", "pos", pos, "statement", stmt)
		return nil
	}
	if err := s.runBarrier(ctx, cmd); err != nil {
		return s.barrierError(ctx, txn, stmt, err)
	}
	applied = append(applied, pos)
	if len(applied) > ddlFenceSize {
		applied = applied[len(applied)-ddlFenceSize:]
	}
	_, err = fence.ReplaceOne(ctx, bson.D{{Key: "_id", Value: s.channel()}},
		bson.D{{Key: "_id", Value: s.channel()}, {Key: "positions", Value: applied}}, options.Replace().SetUpsert(true))
	if err != nil {
		// The command ran; a retry repeats it, which converges (see above).
		return s.barrierError(ctx, txn, stmt, fmt.Errorf("record it in %s.%s: %w", HamalDB, FenceColl, err))
	}
	s.log.Info("applied barrier", "pos", pos, "statement", stmt)
	return nil
}

// fenced returns the positions of the barriers this channel applied last.
func (s *Sink) fenced(ctx context.Context, fence *mongo.Collection) ([]string, error) {
	var doc struct {
		Positions []string `bson:"positions"`
	}
	err := fence.FindOne(ctx, bson.D{{Key: "_id", Value: s.channel()}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	return doc.Positions, err
}

// runBarrier runs one barrier command, tolerating what a replay meets.
func (s *Sink) runBarrier(ctx context.Context, cmd barrierCommand) error {
	switch cmd.kind {
	case "drop":
		err := s.client.Database(cmd.db).RunCommand(ctx, bson.D{{Key: "drop", Value: cmd.coll}}).Err()
		if hasCode(err, codeNamespaceNotFound) {
			return nil // gone already
		}
		return err
	case "dropDatabase":
		return s.client.Database(cmd.db).RunCommand(ctx, bson.D{{Key: "dropDatabase", Value: 1}}).Err()
	case "renameCollection":
		rename := func(dropTarget bool) error {
			c := bson.D{{Key: "renameCollection", Value: cmd.from}, {Key: "to", Value: cmd.to}}
			if dropTarget {
				c = append(c, bson.E{Key: "dropTarget", Value: true})
			}
			return s.client.Database("admin").RunCommand(ctx, c).Err()
		}
		err := rename(false)
		switch {
		case hasCode(err, codeNamespaceNotFound):
			s.log.Warn("rename: the source collection does not exist on the target (renamed already, or it never held a document here); skipped",
				"from", cmd.from, "to", cmd.to)
			return nil
		case hasCode(err, codeNamespaceExists):
			// Not a replay (the fence would have said so): on the source
			// the rename replaced its target, or the target's copy holds
			// documents the source's did not. Either way the source's
			// target is now the renamed collection.
			s.log.Warn("rename: the target collection exists; replacing it, as the source's rename did", "from", cmd.from, "to", cmd.to)
			err := rename(true)
			if !hasCode(err, codeNotImplemented) {
				return err
			}
			// FerretDB has no dropTarget: drop, then rename. A crash in
			// between leaves the source collection and no target, which
			// the repeated rename then moves plainly.
			toDB, toColl, _ := strings.Cut(cmd.to, ".")
			if err := s.client.Database(toDB).RunCommand(ctx, bson.D{{Key: "drop", Value: toColl}}).Err(); err != nil && !hasCode(err, codeNamespaceNotFound) {
				return err
			}
			return rename(false)
		}
		return err
	}
	return fmt.Errorf("unknown barrier command %q", cmd.kind)
}

func hasCode(err error, code int) bool {
	var se mongo.ServerError
	return err != nil && errors.As(err, &se) && se.HasErrorCode(code)
}

func (s *Sink) barrierError(ctx context.Context, txn *event.Txn, stmt string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	wrapped := fmt.Errorf("apply barrier at %s (%s on %s): %w", txn.Pos, stmt, txn.DDL.Schema, err)
	if transient(err) {
		return retry.Transient(wrapped)
	}
	return wrapped
}
