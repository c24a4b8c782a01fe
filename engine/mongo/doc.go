// Package mongo is the MongoDB engine's driver: the one value (Driver)
// through which Hamal configures, opens and checks a MongoDB source (a
// change stream, source/mongo) and a MongoDB sink (sink/mongo).
//
// Why a package of its own: the driver holds both sides, which live in
// packages that must not import each other; it sits above both and keeps
// the glue thin.
//
// What it owns:
//
//   - SourceConfig: the mongo block (uri, database, collection, start,
//     pre_images, initial_sync), its checks; Open; the check that the
//     deployment is a replica set or mongos and a change stream opens, and
//     that the loop guard can see the origin markers.
//   - SinkConfig: the mongo block (uri); Open; the check that the target
//     answers and, with sink.site, applies in transactions.
//   - URI redaction for logs (Endpoint, Redacted).
//
// Usage sketch:
//
//	snk, _ := engine.SinkOf(cfg) // a *mongo.SinkConfig for kind mongo
//	s, err := snk.Open(ctx, engine.SinkEnv(cfg, log))
package mongo
