package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/test/harness"
)

// TestFilterRoute checks what each command becomes under prefix filters
// and a database mapping, with key positions from a real COMMAND table.
func TestFilterRoute(t *testing.T) {
	r := harness.RedisServer(t, harness.RedisOptions{})
	c := r.Client()
	defer c.Close()
	cmds, err := LoadCommands(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	prefixes := &Filter{Include: []string{"a:", "b:"}, Exclude: []string{"a:tmp:"}, Databases: map[int]int{0: 2, 1: 1}}
	mapping := &Filter{Databases: map[int]int{0: 2, 3: 5}}
	cases := []struct {
		f    *Filter
		db   int
		cmd  string
		want string // "db:CMD args; …", "" when dropped, "error: text" when refused
	}{
		{nil, 4, "SET x 1", "4:SET x 1"},
		{prefixes, 0, "SET a:1 v", "2:SET a:1 v"},
		{prefixes, 1, "INCR b:n", "1:INCR b:n"},
		{prefixes, 0, "SET x:1 v", ""},
		{prefixes, 0, "SET a:tmp:1 v", ""},
		{prefixes, 7, "SET a:1 v", ""},
		{prefixes, 0, "DEL a:1 x:1 b:2 a:tmp:3", "2:DEL a:1 b:2"},
		{prefixes, 0, "UNLINK x:1 y:2", ""},
		{prefixes, 0, "MSET a:1 x b:1 y c:1 z", "2:MSET a:1 x b:1 y"},
		{prefixes, 0, "MSET a:1 x b:1 y", "2:MSET a:1 x b:1 y"},
		{prefixes, 0, "RENAME a:1 b:1", "2:RENAME a:1 b:1"},
		{prefixes, 0, "RENAME a:1 x:1", `error: RENAME in database 0 touches key "a:1" inside the prefix filter and key "x:1" outside it`},
		{prefixes, 0, "SUNIONSTORE a:d x:s a:s", `error: SUNIONSTORE in database 0 touches key "a:d" inside`},
		{prefixes, 0, "MSETNX a:1 x q:1 y", "error: MSETNX"},
		{prefixes, 0, "RENAME x:1 y:1", ""},
		{prefixes, 0, "FLUSHDB", "error: FLUSHDB in database 0"},
		{prefixes, 5, "FLUSHDB", ""},
		{prefixes, 0, "FLUSHALL", "error: FLUSHALL"},
		{prefixes, 0, "SWAPDB 0 1", "error: SWAPDB 0 1"},
		{prefixes, 0, "PUBLISH ch m", "2:PUBLISH ch m"},
		{prefixes, 0, "MOVE a:1 1", "2:MOVE a:1 1"},
		{prefixes, 0, "MOVE a:1 9", "2:DEL a:1"},
		{prefixes, 0, "MOVE x:1 1", ""},
		{prefixes, 9, "MOVE a:1 0", `error: MOVE "a:1" from database 9 (not replicated) into database 0`},
		{prefixes, 0, "COPY a:1 b:1 DB 1", "2:COPY a:1 b:1 DB 1"},
		{prefixes, 0, "COPY a:1 x:1 DB 1", ""},
		{prefixes, 0, "COPY x:1 a:1 DB 1", "error: COPY"},
		{mapping, 0, "FLUSHDB ASYNC", "2:FLUSHDB ASYNC"},
		{mapping, 4, "FLUSHDB", ""},
		{mapping, 0, "FLUSHALL", "2:FLUSHDB; 5:FLUSHDB"},
		{mapping, 0, "SWAPDB 0 3", "2:SWAPDB 2 5"},
		{mapping, 0, "SWAPDB 1 4", ""},
		{mapping, 0, "SWAPDB 0 4", "error: SWAPDB 0 4 swaps a replicated database with one not listed"},
		{mapping, 3, "RENAME a x", "5:RENAME a x"},
		{mapping, 1, "RENAME a x", ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d %s", tc.db, tc.cmd), func(t *testing.T) {
			var args [][]byte
			for _, f := range strings.Fields(tc.cmd) {
				args = append(args, []byte(f))
			}
			keys, ok := cmds.Keys(args)
			out, err := tc.f.route(tc.db, args, keys, ok)
			var got string
			if err != nil {
				if !errors.Is(err, ErrFilterSplit) {
					t.Errorf("error %v does not wrap ErrFilterSplit", err)
				}
				got = "error: " + err.Error()
			} else {
				parts := make([]string, len(out))
				for i, r := range out {
					parts[i] = fmt.Sprintf("%d:%s", r.db, bytes.Join(r.args, []byte(" ")))
				}
				got = strings.Join(parts, "; ")
			}
			if strings.HasPrefix(tc.want, "error: ") {
				if !strings.HasPrefix(got, "error: ") || !strings.Contains(got, strings.TrimPrefix(tc.want, "error: ")) {
					t.Errorf("got %q, want an error containing %q", got, strings.TrimPrefix(tc.want, "error: "))
				}
				return
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFilterKeyIn(t *testing.T) {
	f := &Filter{Include: []string{"user:", "order:"}, Exclude: []string{"user:cache:"}}
	for key, want := range map[string]bool{
		"user:1": true, "order:9": true, "user:cache:1": false, "session:1": false, "use": false,
	} {
		if got := f.KeyIn([]byte(key)); got != want {
			t.Errorf("KeyIn(%q) = %v, want %v", key, got, want)
		}
	}
	var none *Filter
	if !none.KeyIn([]byte("x")) {
		t.Error("nil filter drops a key")
	}
	if db, ok := (&Filter{Exclude: []string{"x"}}).TargetDB(7); db != 7 || !ok {
		t.Errorf("no mapping: TargetDB(7) = %d, %v", db, ok)
	}
}
