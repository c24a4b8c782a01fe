package redis

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Filter selects which keys and databases a channel replicates, and maps
// source databases to target databases. The zero Filter replicates
// everything as it is.
type Filter struct {
	// Include, when not empty, keeps only keys starting with one of these
	// prefixes; Exclude drops keys starting with one of these (also when
	// they are included).
	Include, Exclude []string
	// Databases maps source database numbers to target ones. When it is
	// not empty, databases it does not list are not replicated.
	Databases map[int]int
}

// ErrFilterSplit is wrapped by the error for a command that cannot be
// applied under the filter: it touches keys inside and outside the
// filter (and cannot be split by key), or reaches from an unreplicated
// database into a replicated one, or flushes or swaps whole databases
// while prefix filters are set.
var ErrFilterSplit = fmt.Errorf("command cannot be applied under source.redis filters")

// routed is one command as the target receives it: its target database
// and arguments.
type routed struct {
	db   int
	args [][]byte
}

func (f *Filter) active() bool {
	return f != nil && (len(f.Include) > 0 || len(f.Exclude) > 0 || len(f.Databases) > 0)
}

func (f *Filter) prefixes() bool { return f != nil && (len(f.Include) > 0 || len(f.Exclude) > 0) }

// KeyIn reports whether key is replicated by the prefix filters.
func (f *Filter) KeyIn(key []byte) bool {
	if f == nil {
		return true
	}
	for _, p := range f.Exclude {
		if bytes.HasPrefix(key, []byte(p)) {
			return false
		}
	}
	if len(f.Include) == 0 {
		return true
	}
	for _, p := range f.Include {
		if bytes.HasPrefix(key, []byte(p)) {
			return true
		}
	}
	return false
}

// TargetDB returns the target database of source database db, and false
// when db is not replicated.
func (f *Filter) TargetDB(db int) (int, bool) {
	if f == nil || len(f.Databases) == 0 {
		return db, true
	}
	to, ok := f.Databases[db]
	return to, ok
}

// route decides what one stream command in source database db becomes on
// the target: nothing (all its keys or its database are filtered out), the
// command itself in the mapped database, a DEL/UNLINK/MSET… narrowed to
// the keys inside the filter, a cross-database command with its database
// arguments mapped, or an error wrapping ErrFilterSplit. keys and known
// are what Commands.Keys returned for args.
func (f *Filter) route(db int, args [][]byte, keys [][]byte, known bool) ([]routed, error) {
	if !f.active() {
		return []routed{{db: db, args: args}}, nil
	}
	name := strings.ToLower(string(args[0]))
	switch name {
	case "flushall":
		return f.flushAll(args)
	case "swapdb":
		return f.swapDB(db, args)
	case "move":
		return f.move(db, args)
	case "copy":
		if i := copyDBArg(args); i > 0 {
			return f.copyDB(db, args, i)
		}
	}
	to, ok := f.TargetDB(db)
	if !ok {
		return nil, nil
	}
	if name == "flushdb" && f.prefixes() {
		return nil, fmt.Errorf("%w: FLUSHDB in database %d: with include_prefixes/exclude_prefixes set, flushing the target database would also delete keys outside the filter; "+
			"delete the matching keys on the target by hand and restart, or remove the prefix filters", ErrFilterSplit, db)
	}
	if !known || !f.prefixes() {
		// Keys unknown (PUBLISH, FUNCTION LOAD, SORT BY pattern…): applied
		// as they are, in the mapped database.
		return []routed{{db: to, args: args}}, nil
	}
	var in, out []int
	for i, k := range keys {
		if f.KeyIn(k) {
			in = append(in, i)
		} else {
			out = append(out, i)
		}
	}
	switch {
	case len(out) == 0:
		return []routed{{db: to, args: args}}, nil
	case len(in) == 0:
		return nil, nil
	}
	if narrowed := narrow(name, args, keys, f); narrowed != nil {
		return []routed{{db: to, args: narrowed}}, nil
	}
	return nil, fmt.Errorf("%w: %s in database %d touches key %q inside the prefix filter and key %q outside it; "+
		"applying it would replicate only half of it: widen or narrow source.redis.include_prefixes/exclude_prefixes so that both are on one side",
		ErrFilterSplit, strings.ToUpper(name), db, keys[in[0]], keys[out[0]])
}

// narrow rewrites a command whose keys are independent of each other
// (DEL k…, UNLINK k…, TOUCH k…, MSET k v…) to the keys inside the filter;
// nil for any other command.
func narrow(name string, args [][]byte, keys [][]byte, f *Filter) [][]byte {
	switch name {
	case "del", "unlink", "touch":
		out := [][]byte{args[0]}
		for _, k := range args[1:] {
			if f.KeyIn(k) {
				out = append(out, k)
			}
		}
		return out
	case "mset":
		if len(args)%2 != 1 {
			return nil
		}
		out := [][]byte{args[0]}
		for i := 1; i+1 < len(args); i += 2 {
			if f.KeyIn(args[i]) {
				out = append(out, args[i], args[i+1])
			}
		}
		return out
	}
	return nil
}

// flushAll: with only a database mapping, FLUSHALL flushes each mapped
// target database (and nothing else there); with prefix filters it is
// refused, since it would delete keys outside the filter.
func (f *Filter) flushAll(args [][]byte) ([]routed, error) {
	if f.prefixes() {
		return nil, fmt.Errorf("%w: FLUSHALL: with include_prefixes/exclude_prefixes set, flushing the target would also delete keys outside the filter; "+
			"delete the matching keys on the target by hand and restart, or remove the prefix filters", ErrFilterSplit)
	}
	targets := make([]int, 0, len(f.Databases))
	for _, to := range f.Databases {
		targets = append(targets, to)
	}
	sort.Ints(targets)
	out := make([]routed, len(targets))
	for i, to := range targets {
		out[i] = routed{db: to, args: append([][]byte{[]byte("FLUSHDB")}, args[1:]...)} // keeps ASYNC/SYNC
	}
	return out, nil
}

// swapDB maps both databases; swapping a replicated database with an
// unreplicated one, or swapping while prefix filters are set, is refused.
func (f *Filter) swapDB(db int, args [][]byte) ([]routed, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("%w: SWAPDB with %d arguments", ErrFilterSplit, len(args)-1)
	}
	a, errA := strconv.Atoi(string(args[1]))
	b, errB := strconv.Atoi(string(args[2]))
	if errA != nil || errB != nil {
		return nil, fmt.Errorf("%w: SWAPDB %q %q: not database numbers", ErrFilterSplit, args[1], args[2])
	}
	if f.prefixes() {
		return nil, fmt.Errorf("%w: SWAPDB %d %d: with include_prefixes/exclude_prefixes set, swapping target databases would also move keys outside the filter; "+
			"remove the prefix filters or swap the target databases by hand and restart", ErrFilterSplit, a, b)
	}
	ta, okA := f.TargetDB(a)
	tb, okB := f.TargetDB(b)
	switch {
	case !okA && !okB:
		return nil, nil
	case okA != okB:
		return nil, fmt.Errorf("%w: SWAPDB %d %d swaps a replicated database with one not listed in source.redis.databases; list both or neither", ErrFilterSplit, a, b)
	}
	to, _ := f.TargetDB(db)
	return []routed{{db: to, args: [][]byte{args[0], []byte(strconv.Itoa(ta)), []byte(strconv.Itoa(tb))}}}, nil
}

// move handles MOVE key db: a key moved out of the replicated set is
// deleted on the target; a key moved into it from an unreplicated
// database cannot be rebuilt from the command and is refused.
func (f *Filter) move(db int, args [][]byte) ([]routed, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("%w: MOVE with %d arguments", ErrFilterSplit, len(args)-1)
	}
	dst, err := strconv.Atoi(string(args[2]))
	if err != nil {
		return nil, fmt.Errorf("%w: MOVE %q %q: not a database number", ErrFilterSplit, args[1], args[2])
	}
	if !f.KeyIn(args[1]) {
		return nil, nil
	}
	from, fromOK := f.TargetDB(db)
	to, toOK := f.TargetDB(dst)
	switch {
	case fromOK && toOK:
		return []routed{{db: from, args: [][]byte{args[0], args[1], []byte(strconv.Itoa(to))}}}, nil
	case fromOK:
		return []routed{{db: from, args: [][]byte{[]byte("DEL"), args[1]}}}, nil
	case toOK:
		return nil, fmt.Errorf("%w: MOVE %q from database %d (not replicated) into database %d (replicated): the key's value is not in the stream; "+
			"list database %d in source.redis.databases or copy the key by hand", ErrFilterSplit, args[1], db, dst, db)
	}
	return nil, nil
}

// copyDBArg returns the index of the database number of COPY src dst DB n,
// or 0.
func copyDBArg(args [][]byte) int {
	for i := 3; i+1 < len(args); i++ {
		if bytes.EqualFold(args[i], []byte("db")) {
			return i + 1
		}
	}
	return 0
}

// copyDB handles COPY src dst DB n [REPLACE]: the destination database is
// mapped; a copy into an unreplicated database is dropped; a copy from an
// unreplicated database into a replicated one is refused.
func (f *Filter) copyDB(db int, args [][]byte, at int) ([]routed, error) {
	dst, err := strconv.Atoi(string(args[at]))
	if err != nil {
		return nil, fmt.Errorf("%w: COPY … DB %q: not a database number", ErrFilterSplit, args[at])
	}
	srcIn, dstIn := f.KeyIn(args[1]), f.KeyIn(args[2])
	from, fromOK := f.TargetDB(db)
	to, toOK := f.TargetDB(dst)
	if !dstIn || !toOK {
		return nil, nil // the copy lands outside the replicated set
	}
	if !srcIn || !fromOK {
		return nil, fmt.Errorf("%w: COPY %q (database %d) to %q (database %d): the source key is not replicated, the destination is; "+
			"adjust source.redis filters so both are on one side", ErrFilterSplit, args[1], db, args[2], dst)
	}
	out := append([][]byte(nil), args...)
	out[at] = []byte(strconv.Itoa(to))
	return []routed{{db: from, args: out}}, nil
}
