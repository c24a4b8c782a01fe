package mongo

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/event"
)

// testURI names a real replica set for the integration tests. None can
// run on the build machines (change streams need a replica set; mongod
// cannot be installed there and FerretDB has no change streams).
func testURI(t *testing.T) string {
	uri := os.Getenv("HAMAL_TEST_MONGO_URI")
	if uri == "" {
		t.Skip("HAMAL_TEST_MONGO_URI is not set: these tests need a real MongoDB replica set (change streams), which cannot run here; " +
			"set it to e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0 to run them")
	}
	return uri
}

// TestAgainstReplicaSet: CRUD outside and inside a transaction, a drop and
// a resume from a checkpointed position, read from a real change stream.
func TestAgainstReplicaSet(t *testing.T) {
	uri := testURI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	dbName := fmt.Sprintf("hamal_src_test_%d", time.Now().UnixNano())
	db := client.Database(dbName)
	defer db.Drop(context.Background())
	coll := db.Collection("c")
	if err := db.CreateCollection(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, Config{URI: uri, Database: dbName}); err != nil {
		t.Fatalf("check: %v", err)
	}
	src, err := Open(ctx, Config{URI: uri, Database: dbName, Site: "a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The first heartbeat pins the start, before any write.
	first := nextData(t, ctx, src, true)
	if first.Kind != event.KindHeartbeat {
		t.Fatalf("first Txn %+v, want a heartbeat at the start", first)
	}

	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "b"}}}}); err != nil {
		t.Fatal(err)
	}
	sess, err := client.StartSession()
	if err != nil {
		t.Fatal(err)
	}
	_, err = sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
		if _, err := coll.InsertOne(sc, bson.D{{Key: "_id", Value: 2}}); err != nil {
			return nil, err
		}
		if _, err := coll.InsertOne(sc, bson.D{{Key: "_id", Value: 3}}); err != nil {
			return nil, err
		}
		// Not _id 1: the update above must still find it (updateLookup
		// reads the document's current state when the event is read).
		_, err := coll.DeleteOne(sc, bson.D{{Key: "_id", Value: 3}})
		return nil, err
	})
	sess.EndSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ins := nextData(t, ctx, src, false)
	upd := nextData(t, ctx, src, false)
	txn := nextData(t, ctx, src, false)
	if ins.Changes[0].Op != event.OpInsert || upd.Changes[0].Op != event.OpUpdate ||
		upd.Changes[0].After[0].(bson.Raw).Lookup("v").StringValue() != "b" || ins.Origin != "a" {
		t.Errorf("insert %+v, update %+v", ins.Changes, upd.Changes)
	}
	if len(txn.Changes) != 3 || txn.Changes[2].Op != event.OpDelete {
		t.Errorf("transaction: %d changes %+v, want 3 ending with the delete", len(txn.Changes), txn.Changes)
	}
	checkpointed := txn.Pos
	if err := coll.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	drop := nextData(t, ctx, src, false)
	if drop.Kind != event.KindDDL || drop.DDL.Statement != `{"drop":"c"}` {
		t.Errorf("drop: %+v", drop)
	}
	src.Close()

	// Resume after the transaction: the drop comes again, nothing else.
	src, err = Open(ctx, Config{URI: uri, Database: dbName}, checkpointed)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if again := nextData(t, ctx, src, false); again.Kind != event.KindDDL {
		t.Errorf("resumed after the transaction: %+v, want the drop", again)
	}
}

func nextData(t *testing.T, ctx context.Context, s *Source, heartbeatOK bool) *event.Txn {
	t.Helper()
	for {
		txn, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if heartbeatOK || txn.Kind != event.KindHeartbeat {
			return txn
		}
	}
}

// TestInitialSyncAgainstReplicaSet: documents that exist before the
// channel starts are copied, then a write made after the copy streams.
func TestInitialSyncAgainstReplicaSet(t *testing.T) {
	uri := testURI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	dbName := fmt.Sprintf("hamal_src_sync_%d", time.Now().UnixNano())
	db := client.Database(dbName)
	defer db.Drop(context.Background())
	docs := []any{bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: "two"}}, bson.D{{Key: "_id", Value: 3}}}
	if _, err := db.Collection("c").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, Config{URI: uri, Database: dbName, InitialSync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for i := 0; i < len(docs); i++ {
		txn := nextData(t, ctx, src, false)
		if p, _ := DecodePosition(txn.Pos); !p.Snapshot || txn.Changes[0].Op != event.OpInsert {
			t.Fatalf("copied document %d: %+v at %s", i, txn.Changes, txn.Pos)
		}
	}
	if _, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 4}}); err != nil {
		t.Fatal(err)
	}
	txn := nextData(t, ctx, src, false)
	if p, _ := DecodePosition(txn.Pos); p.Snapshot || txn.Changes[0].After[0].(bson.Raw).Lookup("_id").Int32() != 4 {
		t.Errorf("after the copy: %+v at %s", txn.Changes, txn.Pos)
	}
}
