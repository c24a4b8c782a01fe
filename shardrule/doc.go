// Package shardrule is the rule language that maps a key value to a shard:
// hash (CRC-32/IEEE of the key's canonical text mod N, the same as SQL's
// CRC32(col) % N), range (half-open intervals that must cover every key)
// and list (explicit values, optional default).
//
// Resharding routes rows to targets with it (reshard plans) and the MySQL
// sink's ownership guard maps a row's owner to its home site with it
// (sink.ownership), so both read the same YAML and agree on every key.
//
// Invariants: a Rule is immutable and safe for concurrent use; Shard and
// Predicate agree on every value (TestRulesAgreeWithSQL in reshard checks
// the predicate on a real server); Build rejects a range set with a gap or
// an overlap, and a value listed twice.
//
// Usage:
//
//	var spec shardrule.Spec // decoded from YAML, inline next to the key column
//	r, err := shardrule.Build(&spec, 3, "target")
//	shard, err := r.Shard(image[keyIdx])
package shardrule
