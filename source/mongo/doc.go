// Package mongo is the MongoDB source: it reads a change stream (at
// deployment, database or collection scope) with fullDocument:
// updateLookup and turns it into Txns.
//
// Decoding is a pure function (Decode: one raw change event to an Event),
// tested with fixtures shaped as the MongoDB manual documents them. The
// stream logic — grouping the events of one transaction (same lsid and
// txnNumber) into one Txn (a huge one in Partial chunks positioned before
// it), the origin and path of a transaction carrying a loop-guard marker,
// heartbeats from the post-batch resume token, restarting after
// invalidate — runs over a small cursor interface that
// *mongo.ChangeStream satisfies, so it is tested without a server (none
// can run on the build machines: change streams need a replica set).
// Integration tests run against a real replica set named by
// HAMAL_TEST_MONGO_URI.
package mongo
