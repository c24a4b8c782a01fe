package mongo

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	srcmongo "github.com/hamal-replication/hamal/source/mongo"
)

// TestAgainstReplicaSet: with sink.site set, a batch is one transaction
// with the origin marker; the MongoDB source reading the target back gives
// that transaction the marker's origin and path, so the loop guard of the
// reverse channel drops it, while a local write is forwarded. Barriers
// converge on a real server too. Transactions and change streams need a
// replica set, which cannot run on the build machines (FerretDB has
// neither), so this runs only when HAMAL_TEST_MONGO_URI names one.
func TestAgainstReplicaSet(t *testing.T) {
	uri := os.Getenv("HAMAL_TEST_MONGO_URI")
	if uri == "" {
		t.Skip("HAMAL_TEST_MONGO_URI is not set: the transaction path (batch + origin marker in one transaction) needs a real MongoDB replica set, which cannot run here; " +
			"set it to e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0 to run it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	prefix := fmt.Sprintf("hamal_sink_test_%d_", time.Now().UnixNano())
	dbName := prefix + "app"
	defer func() {
		for _, db := range []string{dbName, prefix + "bar", prefix + "dropme"} {
			_ = client.Database(db).Drop(context.Background())
		}
	}()
	channel := prefix + "b2a"

	s, err := Open(ctx, Config{URI: uri, Site: "a", Channel: channel})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Transactions() {
		t.Fatalf("%s is not taken for a replica set (hello has no setName)", uri)
	}

	// The reverse channel a → b reads this deployment.
	src, err := srcmongo.Open(ctx, srcmongo.Config{URI: uri, Site: "a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	path := []string{"b", "a"} // a Txn from b, as the channel b → a stamps it
	batch := []*event.Txn{
		{Pos: event.Position("1"), Kind: event.KindDML, Origin: "b", Path: path, Changes: []event.Change{
			docChange(event.OpInsert, dbName+".x", "_id", 1, "v", "one"),
			docChange(event.OpInsert, dbName+".y", "_id", 2, "v", "two"),
		}},
		{Pos: event.Position("2"), Kind: event.KindDML, Origin: "b", Path: path, Changes: []event.Change{
			docChange(event.OpInsert, dbName+".x", "_id", 3, "v", "three"),
		}},
	}
	if err := s.Apply(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Database(dbName).Collection("x").InsertOne(ctx, bson.D{{Key: "_id", Value: 4}}); err != nil {
		t.Fatal(err)
	}
	var marker bson.M
	if err := client.Database(HamalDB).Collection(MarkerColl).FindOne(ctx, bson.D{{Key: "_id", Value: markerID(channel, 1)}}).Decode(&marker); err != nil {
		t.Fatalf("marker document: %v", err)
	}
	if marker["origin"] != "b" || marker["path"] != "b,a" {
		t.Fatalf("marker %v", marker)
	}
	defer client.Database(HamalDB).Collection(MarkerColl).DeleteOne(context.Background(), bson.D{{Key: "_id", Value: markerID(channel, 1)}})

	guard, err := loopguard.New("a", "b")
	if err != nil {
		t.Fatal(err)
	}
	var applied, local *event.Txn
	for applied == nil || local == nil {
		txn, err := src.Next(ctx)
		if err != nil {
			t.Fatalf("reading the target back: %v", err)
		}
		for _, c := range txn.Changes {
			if c.Namespace == dbName+".x" && c.Op == event.OpInsert {
				switch docOfTest(t, c.After[0]).Lookup("_id").Int32() {
				case 1:
					applied = txn
				case 4:
					local = txn
				}
			}
		}
	}
	if len(applied.Changes) != 3 || applied.Origin != "b" || !slices.Equal(applied.Path, path) {
		t.Errorf("the sink's transaction read back: %d changes, origin %q, path %v; want 3, b, [b a]", len(applied.Changes), applied.Origin, applied.Path)
	}
	if guard.Admit(applied) {
		t.Errorf("the channel a → b forwards what came from b")
	}
	if !guard.Admit(local) || local.Origin != "a" {
		t.Errorf("a local write is not forwarded (origin %q)", local.Origin)
	}

	t.Run("barriers", func(t *testing.T) { testBarriers(t, s, client, prefix) })
}

func docOfTest(t *testing.T, v any) bson.Raw {
	t.Helper()
	d, ok := v.(bson.Raw)
	if !ok {
		t.Fatalf("image is %T, want bson.Raw", v)
	}
	return d
}
