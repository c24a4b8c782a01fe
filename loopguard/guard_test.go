package loopguard

import (
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/event"
)

// A topology is a set of channels "from>to". Each case writes at one site
// and follows the Txn along every channel, as running channels would: a
// site that applies a Txn exposes it (with its marker path) to every
// channel leaving it. The verdicts are what reaches where, and how often.
func TestTopologies(t *testing.T) {
	cases := []struct {
		name     string
		channels []string
		local    bool // channels forward only local writes
		writeAt  string
		want     string // sites that applied the write, with counts, sorted
	}{
		{"dual master", []string{"a>b", "b>a"}, false, "a", "b:1"},
		{"dual master, other side", []string{"a>b", "b>a"}, false, "b", "a:1"},
		{"star from a leaf", []string{"a>c", "c>a", "b>c", "c>b"}, false, "a", "b:1 c:1"},
		{"star from the centre", []string{"a>c", "c>a", "b>c", "c>b"}, false, "c", "a:1 b:1"},
		{"full mesh, relaying", []string{"a>b", "b>a", "b>c", "c>b", "a>c", "c>a"}, false, "a", "b:2 c:2"},
		{"full mesh, local only", []string{"a>b", "b>a", "b>c", "c>b", "a>c", "c>a"}, true, "a", "b:1 c:1"},
		{"ring", []string{"a>b", "b>c", "c>a"}, false, "a", "b:1 c:1"},
		{"chain", []string{"a>b", "b>c"}, false, "a", "b:1 c:1"},
		{"chain, local only", []string{"a>b", "b>c"}, true, "a", "b:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			applied := map[string]int{}
			// queue holds (site, path as that site's marker shows it).
			type exposure struct {
				site string
				path []string
			}
			queue := []exposure{{tc.writeAt, nil}}
			for steps := 0; len(queue) > 0; steps++ {
				if steps > 100 {
					t.Fatalf("no fixpoint: the write circulates (%v)", applied)
				}
				at := queue[0]
				queue = queue[1:]
				for _, ch := range tc.channels {
					from, to, _ := strings.Cut(ch, ">")
					if from != at.site {
						continue
					}
					g, err := New(from, to)
					if err != nil {
						t.Fatal(err)
					}
					if tc.local {
						g = g.LocalOnly()
					}
					txn := &event.Txn{Path: append([]string(nil), at.path...)}
					if !g.Admit(txn) {
						continue
					}
					if txn.Origin != tc.writeAt {
						t.Errorf("channel %s: origin %q, want %q", ch, txn.Origin, tc.writeAt)
					}
					applied[to]++
					queue = append(queue, exposure{to, txn.Path})
				}
			}
			var got []string
			for _, s := range []string{"a", "b", "c"} {
				if n := applied[s]; n > 0 {
					got = append(got, s+":"+string(rune('0'+n)))
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("applied %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}

func TestAdmit(t *testing.T) {
	g, _ := New("sz", "sh")
	local := &event.Txn{}
	if !g.Admit(local) || local.Origin != "sz" || FormatPath(local.Path) != "sz,sh" {
		t.Errorf("local write: origin %q path %v", local.Origin, local.Path)
	}
	echo := &event.Txn{Path: []string{"sh", "sz"}}
	if g.Admit(echo) || echo.Origin != "sh" {
		t.Errorf("echo of sh's write forwarded back to sh (origin %q)", echo.Origin)
	}
	originOnly := &event.Txn{Origin: "sh"} // a marker with the origin and no path
	if g.Admit(originOnly) {
		t.Errorf("echo named by origin only was forwarded: %v", originOnly.Path)
	}
	relayed := &event.Txn{Path: []string{"bj"}} // marker written by bj→sz without sz on it
	if !g.Admit(relayed) || FormatPath(relayed.Path) != "bj,sz,sh" || relayed.Origin != "bj" {
		t.Errorf("relayed: %v origin %q", relayed.Path, relayed.Origin)
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range [][2]string{{"", "b"}, {"a", ""}, {"a", "a"}, {"a,b", "c"}, {"a", "b */ DROP"}, {strings.Repeat("x", 33), "b"}} {
		if _, err := New(c[0], c[1]); err == nil {
			t.Errorf("New(%q, %q) accepted", c[0], c[1])
		}
	}
}

func TestComment(t *testing.T) {
	stmt := Comment([]string{"sz", "sh"}) + "ALTER TABLE t ADD COLUMN c INT"
	path, ok := ParseComment(stmt)
	if !ok || FormatPath(path) != "sz,sh" {
		t.Fatalf("ParseComment(%q) = %v, %v", stmt, path, ok)
	}
	for _, s := range []string{"ALTER TABLE t ADD c INT", "/* other */ DROP TABLE t", "/* hamal:path=sz"} {
		if _, ok := ParseComment(s); ok {
			t.Errorf("ParseComment(%q) found a marker", s)
		}
	}
	if p := ParsePath("sz,bad name,sh"); FormatPath(p) != "sz,sh" {
		t.Errorf("ParsePath kept an invalid site: %v", p)
	}
}
