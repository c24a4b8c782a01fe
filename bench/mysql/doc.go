// Command mysql is Hamal's MySQL benchmark (`make bench`): it starts its own
// MariaDB servers on loopback, writes workloads to a source, and times Hamal
// against MariaDB's own replica (parallel optimistic and serial) applying
// the same binlog into fresh, identically configured targets. It prints one
// table and removes every server it started.
//
// Sections, in the order they run:
//
//  1. catch-up throughput of W1 (single-row INSERTs), W2 (sysbench-style
//     write transactions on a large table) and W3 (W2 with hot rows);
//  2. the raw limit: LOAD DATA LOCAL and 500-row INSERTs of W1's rows;
//  3. the decoder alone (source reader, no sink);
//  4. Hamal's peak RSS on a 1M-row transaction and a LONGBLOB workload
//     (the real binary, as a child process);
//  5. W2 over a 30 ms round-trip link (toxiproxy on loopback);
//  6. end-to-end lag under a steady 2,000 txn/s load.
//
// Every target is compared with the source (row count and CHECKSUM TABLE)
// after each contender: a speed is never reported for a wrong result. Each
// catch-up figure comes with the CPU time per transaction it cost the
// target, hamal and the source.
//
// Every target runs with durable commits, binlog on and MariaDB's default
// 96 MiB redo log (servers.go, targetArgs); BENCH_TARGET_ARGS adds flags.
//
// Environment: BENCH_SCALE (default 1.0, the sizes of the issue; 0.05 for a
// quick run), BENCH_DIR (where data directories go; default the system temp
// directory, a real disk, since the targets run with
// innodb_flush_log_at_trx_commit=1 and sync_binlog=1), BENCH_SECTIONS (a
// comma-separated subset of catchup,raw,decode,memory,link,lag),
// BENCH_WORKLOADS (a subset of W1,W2,W3 for the catch-up and decode
// sections), BENCH_ROUNDS (how many times each catch-up, raw and link
// contender runs, in alternation; medians are reported; default 3 below
// BENCH_SCALE=1, else 1), BENCH_WORKERS and BENCH_BATCH_TXNS (hamal's
// apply.workers and apply.batch_txns; BENCH_WORKERS=4,8,16 races one hamal
// contender per count), BENCH_CPUPROFILE=PREFIX (CPU profiles of the in-process catch-up runs
// of hamal, PREFIX-w1.pprof …), BENCH_CONTENDERS=hamal (catch-up races hamal
// alone, for profiling) or relay (hamal against hamal with the relay log:
// the relay's on/off ratio). By default catch-up races hamal, hamal +
// relay, and MariaDB's optimistic and serial replicas.
package main
