// Package redis is the Redis engine's driver: the one value (Driver)
// through which Hamal configures, opens and checks a Redis source (a PSYNC
// replica, source/redis) and a Redis sink (sink/redis).
//
// Why a package of its own: the driver holds both sides, which live in
// packages that must not import each other; it sits above both and keeps
// the glue thin (its blocks become their Config structs).
//
// What it owns:
//
//   - SourceConfig: addr, user, password / password_file, start (only
//     fullsync: a Redis source always begins with a full sync, then resumes
//     from its checkpoint) and the redis block (include_prefixes,
//     exclude_prefixes, databases), their checks; Open; the check that the
//     master answers and serves its COMMAND table.
//   - SinkConfig: addr, user, password / password_file; Open (with the
//     fencing lease); the check that the target answers.
//
// Usage sketch:
//
//	src, _ := engine.SourceOf(cfg) // a *redis.SourceConfig for kind redis
//	s, err := src.Open(ctx, engine.SourceEnv(cfg, log), checkpoint)
package redis
