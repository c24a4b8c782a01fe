// Command redis is Hamal's Redis benchmark (`go run ./bench/redis`, part of
// `make bench`): it starts a master and a target redis-server on loopback
// and measures, on the same target:
//
//  1. full sync: N keys of mixed types (strings, lists, hashes, sets,
//     sorted sets, streams; one in seven with a TTL) loaded on the master,
//     then a fresh channel's PSYNC, RDB parse and rebuild on the target
//     (keys/s);
//  2. streaming catch-up: the channel is stopped, M commands (INCR, LPUSH,
//     HINCRBY, ZINCRBY, SADD, SET, APPEND) are written to the master, and
//     the restarted channel continues (+CONTINUE) and applies them
//     (commands/s), exactly once through its offset fences;
//  3. the raw limit: `redis-benchmark -t set -P 16` against the target.
//
// After 1 and 2 the target is compared with the master (harness.RedisDiff:
// every key's type, value and expiry); a rate is printed only for an equal
// target. Hamal runs in process, wired as `hamal run` wires it (16
// workers, 256-Txn batches).
//
// Environment: BENCH_SCALE (default 1.0: N = 1,000,000 keys, M = 500,000
// commands; 0.1 for a quick run), BENCH_DIR (where the servers' directories
// go; default the system temp directory), BENCH_CPUPROFILE (write a CPU
// profile of the whole run there).
package main
