// Package loopguard will decide, per transaction, whether a channel
// forwards or drops it, by origin tagging: sinks stamp the origin site of
// each applied transaction in a marker (MySQL hamal.origin_marker, Redis
// hamal:origin:<worker>, MongoDB hamal.origin_marker) inside the same target
// transaction, sources read the marker back into Txn.Origin, and a channel
// drops a Txn whose origin equals its sink site. Pure logic, no I/O.
//
// Not implemented yet: the core channel forwards every Txn and never
// replicates Hamal's own schema (hamal.*).
package loopguard
