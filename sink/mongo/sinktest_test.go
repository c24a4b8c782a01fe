package mongo

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/sink/sinktest"
)

// TestSinkConformance runs the shared sink suite against embedded
// FerretDB (HAMAL_TEST_FERRETDB=1) and, when HAMAL_TEST_MONGO_URI names
// one, a real replica set, where units are transactions with the marker
// and the lease proof inside.
func TestSinkConformance(t *testing.T) {
	t.Run("ferretdb", func(t *testing.T) {
		runConformance(t, startFerretDB(t), "sinktest_conf")
	})
	t.Run("replica set", func(t *testing.T) {
		uri := os.Getenv("HAMAL_TEST_MONGO_URI")
		if uri == "" {
			t.Skip("HAMAL_TEST_MONGO_URI is not set: units as transactions (marker and lease proof inside) need a real MongoDB replica set, which cannot run here")
		}
		runConformance(t, uri, fmt.Sprintf("sinktest_conf_%d", time.Now().UnixNano()))
	})
}

func runConformance(t *testing.T, uri, db string) {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	defer client.Database(db).Drop(ctx)
	coll := client.Database(db).Collection("t")
	probe, err := Open(ctx, Config{URI: uri, SkipLease: true})
	if err != nil {
		t.Fatal(err)
	}
	transactions := probe.Transactions()
	probe.Close()

	tg := sinktest.Target{
		Open: func(t testing.TB, channel string) (sink.Sink, error) {
			return Open(ctx, Config{URI: uri, Channel: channel, Site: "sh", LeaseTTL: 500 * time.Millisecond})
		},
		State: func(t testing.TB) string {
			cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
			if err != nil {
				t.Fatal(err)
			}
			var docs []bson.M
			if err := cur.All(ctx, &docs); err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, d := range docs {
				out = append(out, fmt.Sprintf("%v=%v/%v", d["_id"], d["id"], d["v"]))
			}
			return strings.Join(out, ";")
		},
		Reset: func(t testing.TB) {
			if _, err := coll.DeleteMany(ctx, bson.D{}); err != nil {
				t.Fatal(err)
			}
		},
		Txns: sinktest.RowWorkload(db, "t"),
		// Stops the holder's renewal, as a partition would; the successor
		// takes the lease over once it saw no beat for a TTL.
		LoseLease: func(t testing.TB, s sink.Sink) {
			l := s.(*Sink).lease
			l.closed.Do(func() { close(l.stop); <-l.done })
		},
		// A field name a replacement document cannot have: refused after
		// the unit's marker was written in its transaction.
		Failing: sinktest.RowTxn(99, event.Change{Op: event.OpInsert, Namespace: db + ".t",
			Table: &event.Table{Schema: db, Name: "t", PrimaryKey: []int{0}, Columns: []event.Column{{Name: "id"}, {Name: "$v"}}},
			After: []any{int32(99), "x"}}),
	}
	if transactions {
		tg.Markers = func(t testing.TB) string {
			cur, err := client.Database(HamalDB).Collection(MarkerColl).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^sinktest-marker/"}}}})
			if err != nil {
				t.Fatal(err)
			}
			var docs []bson.M
			if err := cur.All(ctx, &docs); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(docs)
		}
	} else {
		tg.Skip = map[string]string{"marker": "this target (FerretDB, or a standalone server) has no transactions, so the sink writes no origin marker on it; the marker-in-the-unit case runs against a replica set (HAMAL_TEST_MONGO_URI)"}
	}
	sinktest.Run(t, tg)
}
