package mongo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/event"
)

// TestLease (FerretDB): a second process is refused while the holder
// renews, naming it; Close deletes the lease document so a successor
// starts at once; a holder that stopped renewing is taken over after a
// TTL and its next batch fails; a SkipLease sink never applies.
func TestLease(t *testing.T) {
	uri := startFerretDB(t)
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	leases := client.Database(HamalDB).Collection(LeaseColl)
	cfg := Config{URI: uri, Channel: "lease-t", LeaseTTL: 400 * time.Millisecond}

	first, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, cfg)
	if !errors.Is(err, ErrLeaseHeld) || !strings.Contains(err.Error(), first.lease.owner) {
		t.Fatalf("second Open: %v, want ErrLeaseHeld naming %q", err, first.lease.owner)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := leases.CountDocuments(ctx, bson.D{{Key: "_id", Value: "lease-t"}}); err != nil || n != 0 {
		t.Fatalf("lease document after Close: %d, %v", n, err)
	}

	holder, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	defer holder.Close()
	put := func(k int32, v string) *event.Txn {
		return txnOf(int(k), event.Change{Op: event.OpInsert, Namespace: "app.lease", Table: kvTable, After: []any{k, v}})
	}
	if err := holder.Apply(ctx, []*event.Txn{put(1, "holder")}); err != nil {
		t.Fatal(err)
	}
	holder.lease.closed.Do(func() { close(holder.lease.stop); <-holder.lease.done }) // stops renewing
	successor, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("successor of a holder that stopped renewing: %v", err)
	}
	defer successor.Close()
	if err := successor.Apply(ctx, []*event.Txn{put(1, "successor")}); err != nil {
		t.Fatal(err)
	}
	if err := holder.Apply(ctx, []*event.Txn{put(1, "holder-late")}); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("the old holder's Apply: %v, want ErrLeaseHeld", err)
	}
	var doc bson.M
	if err := client.Database("app").Collection("lease").FindOne(ctx, bson.D{{Key: "_id", Value: int64(1)}}).Decode(&doc); err != nil || doc["v"] != "successor" {
		t.Fatalf("document %v, %v; want the successor's", doc, err)
	}

	check, err := Open(ctx, Config{URI: uri, Channel: "lease-t", SkipLease: true})
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	if err := check.Apply(ctx, []*event.Txn{put(2, "x")}); err == nil || !strings.Contains(err.Error(), "SkipLease") {
		t.Fatalf("Apply of a SkipLease sink: %v", err)
	}
}
