package redis

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// commandSpec is one entry of the source's COMMAND table: where the keys
// of the command sit among its arguments.
type commandSpec struct {
	name              string // lower case
	first, last, step int
	movable           bool
	crossDB           bool                    // in crossDatabase
	subcommands       map[string]*commandSpec // "xgroup|create" etc., by full name
}

// Commands is the source's command table, read with COMMAND at start, so
// that key positions match the server's version and loaded modules.
type Commands struct {
	byName map[string]*commandSpec
}

// LoadCommands reads the COMMAND table of the server c talks to.
func LoadCommands(ctx context.Context, c *goredis.Client) (*Commands, error) {
	reply, err := c.Do(ctx, "COMMAND").Slice()
	if err != nil {
		return nil, fmt.Errorf("read COMMAND table: %w", err)
	}
	cmds := &Commands{byName: make(map[string]*commandSpec, len(reply))}
	for _, entry := range reply {
		name, spec, err := parseCommandEntry(entry)
		if err != nil {
			return nil, fmt.Errorf("read COMMAND table: %w", err)
		}
		spec.name, spec.crossDB = name, crossDatabase[name]
		cmds.byName[name] = spec
	}
	if len(cmds.byName) == 0 {
		return nil, fmt.Errorf("read COMMAND table: empty reply")
	}
	return cmds, nil
}

func parseCommandEntry(entry any) (string, *commandSpec, error) {
	fields, ok := entry.([]any)
	if !ok || len(fields) < 6 {
		return "", nil, fmt.Errorf("unexpected COMMAND entry %v", entry)
	}
	name, _ := fields[0].(string)
	first, _ := fields[3].(int64)
	last, _ := fields[4].(int64)
	step, _ := fields[5].(int64)
	spec := &commandSpec{first: int(first), last: int(last), step: int(step)}
	if flags, ok := fields[2].([]any); ok {
		for _, f := range flags {
			if s, _ := f.(string); s == "movablekeys" {
				spec.movable = true
			}
		}
	}
	if len(fields) >= 10 {
		if subs, ok := fields[9].([]any); ok && len(subs) > 0 {
			spec.subcommands = map[string]*commandSpec{}
			for _, sub := range subs {
				subName, subSpec, err := parseCommandEntry(sub)
				if err != nil {
					return "", nil, err
				}
				spec.subcommands[strings.ToLower(subName)] = subSpec
			}
		}
	}
	return strings.ToLower(name), spec, nil
}

// crossDatabase names commands that touch another database than the
// selected one; their conflict keys cannot be expressed in one namespace.
var crossDatabase = map[string]bool{"move": true, "swapdb": true, "flushdb": true, "flushall": true, "migrate": true}

// Keys returns the keys args touches (it may share args' backing array:
// callers must not modify it). ok is false when the keys cannot be
// known: an unknown command, a command without keys (FLUSHALL, a script
// with no keys), one that reaches into other databases (MOVE, SWAPDB, COPY
// … DB), or SORT reading keys by pattern; such a command is a barrier.
func (c *Commands) Keys(args [][]byte) (keys [][]byte, ok bool) {
	if len(args) == 0 {
		return nil, false
	}
	var buf [32]byte
	lower := lowerInto(buf[:0], args[0])
	spec := c.byName[string(lower)] // no allocation: the compiler sees the lookup
	if spec == nil || spec.crossDB {
		return nil, false
	}
	name := spec.name
	if spec.subcommands != nil && len(args) > 1 {
		if sub := spec.subcommands[name+"|"+strings.ToLower(string(args[1]))]; sub != nil {
			spec = sub
		}
	}
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return numKeys(args, 2, nil)
	case "zunionstore", "zinterstore", "zdiffstore":
		if len(args) < 2 {
			return nil, false
		}
		return numKeys(args, 2, args[1:2])
	case "zunion", "zinter", "zdiff", "sintercard", "zintercard", "lmpop", "zmpop":
		return numKeys(args, 1, nil)
	case "blmpop", "bzmpop":
		return numKeys(args, 2, nil)
	case "copy":
		for _, a := range args[3:min(len(args), 6)] {
			if bytes.EqualFold(a, []byte("db")) {
				return nil, false
			}
		}
	case "sort", "sort_ro":
		return sortKeys(args)
	case "georadius", "georadiusbymember":
		return storeKeys(args, []string{"store", "storedist"})
	}
	if spec.movable || spec.first <= 0 {
		return nil, false
	}
	last := spec.last
	if last < 0 {
		last = len(args) + last
	}
	step := max(spec.step, 1)
	if step == 1 {
		// The keys are a run of the arguments: share them (callers only
		// read keys).
		end := min(last+1, len(args))
		if spec.first >= end {
			return nil, false
		}
		return args[spec.first:end:end], true
	}
	for i := spec.first; i <= last && i < len(args); i += step {
		keys = append(keys, args[i])
	}
	return keys, len(keys) > 0
}

// lowerInto appends b in lower case (ASCII) to dst.
func lowerInto(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// numKeys reads "numkeys key..." at args[at]; prefix holds keys before it.
func numKeys(args [][]byte, at int, prefix [][]byte) ([][]byte, bool) {
	if at >= len(args) {
		return nil, false
	}
	n, err := strconv.Atoi(string(args[at]))
	if err != nil || n < 0 || at+1+n > len(args) {
		return nil, false
	}
	keys := append(append([][]byte(nil), prefix...), args[at+1:at+1+n]...)
	return keys, len(keys) > 0
}

// sortKeys handles SORT key [BY pattern] [GET pattern] [STORE dest]: a
// pattern reads keys that cannot be known, so BY or GET make it a barrier
// (except BY nosort and GET #, which read nothing).
func sortKeys(args [][]byte) ([][]byte, bool) {
	if len(args) < 2 {
		return nil, false
	}
	keys := [][]byte{args[1]}
	for i := 2; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "by":
			if i+1 >= len(args) || !bytes.EqualFold(args[i+1], []byte("nosort")) {
				return nil, false
			}
			i++
		case "get":
			if i+1 >= len(args) || string(args[i+1]) != "#" {
				return nil, false
			}
			i++
		case "store":
			if i+1 < len(args) {
				keys = append(keys, args[i+1])
			}
			i++
		case "limit":
			i += 2
		}
	}
	return keys, true
}

// storeKeys returns args[1] and the argument after any of the store words.
func storeKeys(args [][]byte, words []string) ([][]byte, bool) {
	if len(args) < 2 {
		return nil, false
	}
	keys := [][]byte{args[1]}
	for i := 2; i+1 < len(args); i++ {
		for _, w := range words {
			if bytes.EqualFold(args[i], []byte(w)) {
				keys = append(keys, args[i+1])
			}
		}
	}
	return keys, true
}
