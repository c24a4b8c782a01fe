// Package arch checks the import rules docs/architecture.md states, from
// `go list -deps`, so a change that breaks one fails here instead of
// drifting unseen.
package arch

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/hamal-replication/hamal/"

// deps maps every non-test package of the module to the module packages it
// depends on, directly or not.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", module+"...").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], module) {
			continue
		}
		pkg := strings.TrimPrefix(f[0], module)
		if strings.HasPrefix(pkg, "test/") || strings.HasPrefix(pkg, "bench/") {
			continue
		}
		var own []string
		for _, d := range f[1:] {
			if strings.HasPrefix(d, module) {
				own = append(own, strings.TrimPrefix(d, module))
			}
		}
		sort.Strings(own)
		m[pkg] = own
	}
	if len(m) < 20 {
		t.Fatalf("go list found only %d packages: %v", len(m), m)
	}
	return m
}

func under(pkg, root string) bool { return pkg == root || strings.HasPrefix(pkg, root+"/") }

// exceptions are known violations being removed; each must still occur,
// so a fixed one is struck from this list in the same change.
var exceptions = map[string]bool{}

func TestImportRules(t *testing.T) {
	m := deps(t)
	seen := map[string]bool{}
	bad := func(pkg, dep, rule string) {
		v := pkg + " -> " + dep
		if exceptions[v] {
			seen[v] = true
			return
		}
		t.Errorf("%s imports %s: %s (docs/architecture.md)", pkg, dep, rule)
	}
	for pkg, ds := range m {
		for _, d := range ds {
			switch {
			case pkg == "config" && d != "dag" && d != "loopguard" && d != "event":
				bad(pkg, d, "config knows no engine; it imports only dag, loopguard and event")
			case under(pkg, "sink") && under(d, "source"):
				bad(pkg, d, "a sink imports no source; the two sides meet in engine/<name>")
			case under(pkg, "source") && under(d, "sink"):
				bad(pkg, d, "a source imports no sink; the two sides meet in engine/<name>")
			case pkg == "pipeline" && (d == "relay" || under(d, "engine") || strings.HasPrefix(d, "source/") || strings.HasPrefix(d, "sink/")):
				bad(pkg, d, "pipeline imports no engine and not the relay")
			case pkg == "dag" || pkg == "event":
				bad(pkg, d, "dag and event import nothing of Hamal")
			}
		}
	}
	for v := range exceptions {
		if !seen[v] {
			t.Errorf("exception %q no longer occurs: remove it from the list", v)
		}
	}
}
