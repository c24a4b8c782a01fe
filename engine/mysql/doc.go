// Package mysql is the MySQL/MariaDB engine's driver: the one value
// (Driver) through which `hamal run`, `hamal check`, `hamal migrate`,
// `hamal failover-report` and the benchmarks configure, open and check a
// MySQL source and sink.
//
// Why a package of its own: a driver holds both sides of its engine, and
// the sides live in packages that must not import each other (sink/mysql
// imports no source/*). So the driver sits above both, importing
// source/mysql and sink/mysql, and keeps the glue thin: it turns its
// config blocks into their Config structs and calls their constructors.
//
// What it owns:
//
//   - Conn: the keys of one server connection, shared by both sides and by
//     migration plans (addr, user, password / password_file, tls), their
//     validation, the crypto/tls configuration for addr's host (TLSConfig)
//     and a plain session over it (Connect).
//   - SourceConfig: the source block (Conn plus server_id, flavor, start,
//     tables, exclude, hamal_schema, heartbeat), its defaults and
//     checks; Open (the binlog reader), the heartbeat writer as the
//     source's sidecar, and the source's preflight for `hamal check`
//     (source/mysql.Preflight and the least-privilege grant check).
//   - SinkConfig: the sink block (Conn plus allow_keyless_tables,
//     hamal_schema, conflicts, unsynced), its checks (conflict policies
//     and unsynced owners need sink.site); Open (the applier with its
//     fencing lease) and the sink's preflight: target reachable, the
//     grants it needs, every source table present with its columns.
//
// Usage sketch (a migration building a channel's sink from a plan's
// target, so it gets the TLS and conflict rules `hamal run` would):
//
//	sc := &mysql.SinkConfig{Conn: target.Conn, Conflicts: plan.Conflicts}
//	snk, err := sc.Open(ctx, engine.Env{Channel: name, Site: site, Workers: 8, Logger: log})
package mysql
