// Package e2e holds Hamal's end-to-end tests: the real hamal binary,
// built once per run, replicating between real MariaDB servers that the
// harness starts on loopback. They kill hamal with SIGKILL, feed it bad
// input, and compare every table of the target with the source.
//
// HAMAL_LONG=1 runs the long variants: 20k-transaction MySQL workloads
// instead of 8k, 200k migrated rows instead of 40k, and the larger Redis
// workloads (docs/redis.md). make test runs the default sizes.
package e2e
