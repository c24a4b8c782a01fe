package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/event"
)

func TestByPath(t *testing.T) {
	mk := func(spec string) []*event.Txn {
		var out []*event.Txn
		for i, p := range strings.Fields(spec) {
			txn := &event.Txn{Seq: uint64(i + 1)}
			if p != "-" {
				txn.Path = strings.Split(p, ",")
			}
			out = append(out, txn)
		}
		return out
	}
	cases := []struct{ in, want string }{
		{"- - -", "[1 2 3]"},
		{"a,b a,b", "[1 2]"},
		{"a,b c,b a,b - c,b", "[1] [2] [3] [4] [5]"},
		{"a a c c a -", "[1 2] [3 4] [5] [6]"},
		{"a", "[1]"},
	}
	for _, tc := range cases {
		var got []string
		for part := range byPath(mk(tc.in)) {
			var seqs []string
			for _, txn := range part {
				seqs = append(seqs, fmt.Sprint(txn.Seq))
			}
			got = append(got, "["+strings.Join(seqs, " ")+"]")
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("byPath(%s) = %s, want %s", tc.in, strings.Join(got, " "), tc.want)
		}
	}
}
