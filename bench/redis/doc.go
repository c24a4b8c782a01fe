// Command redis is Hamal's Redis benchmark (`go run ./bench/redis`, part of
// `make bench`). It builds cmd/hamal and runs it as its own process, as an
// operator would, and, when BENCH_REDISSHAKE names a RedisShake binary
// (built from RedisShake's own source; nothing of it is in this
// repository), RedisShake beside it with its defaults. Each contender in
// each round gets a fresh master and a fresh target redis-server, and the
// same workload:
//
//  1. full sync: N keys of mixed types (strings, lists, hashes, sets,
//     sorted sets, streams; one in seven with a TTL) loaded on the master,
//     then the contender starts (PSYNC, RDB) and is timed until the target
//     holds every key (keys/s);
//  2. streaming catch-up: the contender is stopped (SIGSTOP), M commands
//     are written to the master (INCR, LPUSH, HINCRBY, ZINCRBY, APPEND,
//     XADD, SADD, MSET, EXPIRE: every one changes data, most are not
//     idempotent) and wait in its replication buffers; the contender is
//     let go (SIGCONT) and timed until the target has run all M
//     (commands/s, from the target's INFO commandstats). Then the target is
//     compared with the master key by key (harness.RedisDiff);
//  3. kill -9 (first round): stopped again, M/2 more commands, let go,
//     SIGKILL once half of them are applied, started again with the same
//     config (Hamal resumes from its checkpoint; RedisShake starts over),
//     and once the target is quiet: keys differing from the master, lists
//     of another length (elements duplicated or lost), full syncs the
//     master served after the restart, and whether the tool still runs.
//
// Each round also loads the same commands with `redis-cli --pipe` into a
// fresh target: the raw limit. Rounds alternate which contender goes
// first. The table gives medians over the rounds: rates, their ratio,
// each tool's CPU time (user + system, from /proc) and the target's (INFO
// cpu) per key and per command, and the load average at the start and
// the end (the figures mean little on a loaded machine).
//
// Environment: BENCH_SCALE (default 1.0: N = 300,000 keys, M = 200,000
// commands; 0.1 for a quick run), BENCH_ROUNDS (default 1, or 2 with
// RedisShake), BENCH_REDISSHAKE (path of a redis-shake binary),
// BENCH_DIR (where the servers' directories go; default the system temp
// directory), BENCH_HAMAL (a hamal binary instead of building one),
// BENCH_PROFILE (path prefix: a CPU profile of Hamal over the first
// BENCH_PROFILE_SECONDS, default 5, of each full sync and each catch-up, fetched from its
// admin.pprof endpoint).
package main
