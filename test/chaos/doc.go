// Package chaos is Hamal's fault-injection suite for the MySQL channel: it
// runs the real hamal binary between two MariaDB servers on loopback, writes
// a workload to the source, breaks things on purpose, and then requires the
// target to equal the source, table by table, by server-side checksum.
//
// What it owns:
//
//   - Link: an in-process toxiproxy proxy on 127.0.0.1 between hamal and
//     one server, with the faults the suite injects: latency, a full cut
//     (connections dropped and new ones refused), reset_peer and a bandwidth
//     cap.
//   - Hamal: a hamal process started from a config file, with its admin
//     API (/status, /metrics), its RSS from /proc and kill -9.
//   - Load: a steady, throttled workload (test/workload transactions) from a
//     few writers that survive a source crash by reconnecting.
//   - Compare and Report: the checksum comparison of every table and the
//     figures each scenario prints (faults injected, transactions, rows
//     compared, mismatches, recovery time).
//
// Recovery time is measured on data, not on hamal's own view: when a fault
// ends, a probe row is written to the source, and recovery is the time until
// that row is on the target.
//
// The scenarios are tests in this package. By default (make test) only
// TestChaosShort runs: a few faults of a few seconds on one channel. With
// HAMAL_CHAOS=short every scenario runs at short size (5 s cuts, a 50k-row
// transaction); with HAMAL_CHAOS=long (make chaos) at full size (30 s
// cuts, a 1M-row transaction). HAMAL_SOAK=<duration> (make soak) runs the
// soak: a steady workload with a random fault every minute. With -short
// every scenario is skipped. docs/reliability.md lists the scenarios and
// the last figures.
//
// Usage sketch (a scenario, inside this package's tests):
//
//	e := newEnv(t, envOptions{})                           // source, target, links, hamal
//	load := e.startLoad(t, LoadOptions{Writers: 2})        // writers on the source
//	rep := &Report{Scenario: "example"}
//	heal := e.srcLink.Cut()                                // inject
//	e.hold(t, 5*time.Second)
//	heal()
//	e.measureRecovery(t, rep, e.src, "source cut", time.Minute) // probe row round trip
//	e.finish(t, rep, load, e.src)                          // target == source, report
package chaos
