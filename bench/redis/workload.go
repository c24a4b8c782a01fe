package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// A command of the workload, as its words.
type command []string

// keyCommands returns the commands that create n keys of mixed types in
// database 0: strings, lists, hashes, sets, sorted sets and streams, one
// in seven with a TTL of a day.
func keyCommands(n int) []command {
	out := make([]command, 0, n+n/7+1)
	for i := 0; i < n; i++ {
		k := "k:" + strconv.Itoa(i)
		is := strconv.Itoa(i)
		switch i % 6 {
		case 0:
			out = append(out, command{"SET", k, strings.Repeat("v", 32) + is})
		case 1:
			out = append(out, command{"RPUSH", k, is, "a", "b", "c", "d"})
		case 2:
			out = append(out, command{"HSET", k, "f1", is, "f2", "two", "f3", "3.5", "f4", "four", "f5", "x"})
		case 3:
			out = append(out, command{"SADD", k, is, "a", "b", "c", "d"})
		case 4:
			out = append(out, command{"ZADD", k, is, "m1", "2", "m2", "3", "m3"})
		case 5:
			out = append(out, command{"XADD", k, "*", "f", is, "g", "x"})
		}
		if i%7 == 0 {
			out = append(out, command{"EXPIRE", k, "86400"})
		}
	}
	return out
}

// streamCommands returns n commands over the key space of the loaded keys
// and new keys: mostly non-idempotent (INCR, LPUSH, HINCRBY, ZINCRBY,
// APPEND, XADD), with SADD, MSET and EXPIRE; applying one twice shows.
// Every one of them changes the data, so the master propagates each, as
// one command: the target's count of them tells when a tool is done.
func streamCommands(n, keys int, seed uint64) []command {
	rnd := rand.New(rand.NewPCG(seed, 2))
	space := max(keys/10, 100)
	out := make([]command, n)
	for i := range out {
		k := "s:" + strconv.Itoa(rnd.IntN(space))
		is := strconv.Itoa(i)
		switch rnd.IntN(10) {
		case 0, 1:
			out[i] = command{"INCR", k + ":n"}
		case 2, 3:
			out[i] = command{"LPUSH", k + ":l", is}
		case 4:
			out[i] = command{"HINCRBY", k + ":h", strconv.Itoa(rnd.IntN(5)), "1"}
		case 5:
			out[i] = command{"ZINCRBY", k + ":z", "1", strconv.Itoa(rnd.IntN(5))}
		case 6:
			out[i] = command{"SADD", k + ":set", strconv.FormatUint(seed, 10) + ":" + is} // a new member
		case 7:
			out[i] = command{"APPEND", k + ":a", "ab"}
		case 8:
			out[i] = command{"XADD", k + ":x", "*", "f", is}
		case 9:
			if i%2 == 0 {
				// MSET, not SET: Hamal's lease renewal is a SET.
				out[i] = command{"MSET", k + ":s", is}
			} else {
				// A loaded key: it exists, so the EXPIRE is propagated.
				out[i] = command{"EXPIRE", "k:" + strconv.Itoa(rnd.IntN(keys)), strconv.Itoa(86400 + rnd.IntN(3600))}
			}
		}
	}
	return out
}

// appliedNames are the target's command names (INFO commandstats) the
// stream commands arrive as: the master propagates EXPIRE as PEXPIREAT.
// Neither tool uses them for its own bookkeeping while streaming.
var appliedNames = []string{"incr", "lpush", "hincrby", "zincrby", "sadd", "append", "xadd", "mset", "pexpireat", "expire"}

// write sends cmds to r's database 0, pipelined.
func write(ctx context.Context, c *goredis.Client, cmds []command) error {
	p := c.Pipeline()
	for _, cmd := range cmds {
		args := make([]any, len(cmd))
		for i, a := range cmd {
			args[i] = a
		}
		p.Do(ctx, args...)
		if p.Len() >= 2000 {
			if _, err := p.Exec(ctx); err != nil {
				return err
			}
		}
	}
	_, err := p.Exec(ctx)
	return err
}

// writeRESP writes cmds to path as RESP arrays, what redis-cli --pipe reads.
func writeRESP(path string, cmds []command) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, cmd := range cmds {
		fmt.Fprintf(w, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
