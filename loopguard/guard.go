package loopguard

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hamal-replication/hamal/event"
)

// siteName is what a site id may look like: short, and free of the path
// separator and of anything a SQL comment or Redis key would mind.
var siteName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ValidSite reports whether s can name a site.
func ValidSite(s string) bool { return siteName.MatchString(s) }

// Guard is the loop guard of one channel, from a source site to a sink
// site. It is safe for concurrent use (it holds no mutable state).
type Guard struct {
	source, sink string
	localOnly    bool
}

// LocalOnly makes the guard forward only Txns that were written at the
// source site, never ones the source merely relays. A full mesh needs it:
// every site hears each write directly, and a relayed copy would arrive a
// second time, possibly after a newer direct one.
func (g *Guard) LocalOnly() *Guard {
	c := *g
	c.localOnly = true
	return &c
}

// New returns the guard of a channel from site source to site sink.
func New(source, sink string) (*Guard, error) {
	switch {
	case !ValidSite(source):
		return nil, fmt.Errorf("loop guard: source site %q: use 1-32 letters, digits, '_' or '-'", source)
	case !ValidSite(sink):
		return nil, fmt.Errorf("loop guard: sink site %q: use 1-32 letters, digits, '_' or '-'", sink)
	case source == sink:
		return nil, fmt.Errorf("loop guard: source and sink are both site %q: a channel connects two different sites", source)
	}
	return &Guard{source: source, sink: sink}, nil
}

// Admit stamps txn's path and origin and reports whether the channel
// forwards it (true) or drops it as an echo (false).
func (g *Guard) Admit(txn *event.Txn) bool {
	if len(txn.Path) == 0 && txn.Origin != "" && txn.Origin != g.source {
		// A source whose marker carries the origin only (no path).
		txn.Path = append(txn.Path, txn.Origin)
	}
	if len(txn.Path) == 0 || txn.Path[len(txn.Path)-1] != g.source {
		txn.Path = append(txn.Path, g.source)
	}
	txn.Origin = txn.Path[0]
	if slices.Contains(txn.Path, g.sink) || g.localOnly && txn.Origin != g.source {
		return false
	}
	txn.Path = append(txn.Path, g.sink)
	return true
}

// SamePath reports whether a and b carry the same path, i.e. may share one
// target transaction and its marker.
func SamePath(a, b *event.Txn) bool { return slices.Equal(a.Path, b.Path) }

// FormatPath encodes a path for a marker: "sz,hub,sh".
func FormatPath(path []string) string { return strings.Join(path, ",") }

// ParsePath decodes FormatPath's output; names that are not valid sites are
// dropped, so a damaged marker cannot inject a separator.
func ParsePath(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if ValidSite(p) {
			out = append(out, p)
		}
	}
	return out
}

// commentPrefix opens the marker comment a sink puts before a DDL statement,
// which has no transaction to carry a marker row.
const commentPrefix = "/* hamal:path="

// Comment returns the marker comment for a DDL applied with path, ending in
// a space, to prefix the statement with.
func Comment(path []string) string {
	return commentPrefix + FormatPath(path) + " */ "
}

// ParseComment reads a marker comment at the start of stmt (after blanks)
// and returns its path; ok is false when stmt has none.
func ParseComment(stmt string) (path []string, ok bool) {
	s := strings.TrimLeft(stmt, " \t\r\n")
	if !strings.HasPrefix(s, commentPrefix) {
		return nil, false
	}
	s = s[len(commentPrefix):]
	end := strings.Index(s, " */")
	if end < 0 {
		return nil, false
	}
	return ParsePath(s[:end]), true
}
