// Package e2e holds Hamal's end-to-end tests: the real hamal binary,
// built once per run, replicating between real MariaDB servers that the
// harness starts on loopback. They kill hamal with SIGKILL, feed it bad
// input, and compare every table of the target with the source.
package e2e
