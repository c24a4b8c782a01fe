package reshard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/config"
)

func planWith(t *testing.T, tables string, targets int) (*Plan, error) {
	t.Helper()
	var b strings.Builder
	b.WriteString("name: t1\nstate_dir: /tmp/x\nsources:\n  - {addr: 127.0.0.1:1, user: root, server_id: 7}\ntargets:\n")
	for i := 0; i < targets; i++ {
		b.WriteString("  - {addr: 127.0.0.1:" + string(rune('2'+i)) + "0, user: root}\n")
	}
	b.WriteString("tables:\n" + tables)
	return Parse([]byte(b.String()))
}

func TestRangeRule(t *testing.T) {
	p, err := planWith(t, `  - name: a.b
    shard_key: k
    rule: range
    ranges:
      - {shard: 1, from: 100, to: 200}
      - {shard: 0, to: 100}
      - {shard: 2, from: 200}
`, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := p.Tables[0].Router()
	cases := []struct {
		key  any
		want int
	}{{int64(-1 << 62), 0}, {int64(99), 0}, {int64(100), 1}, {uint16(199), 1}, {[]byte("200"), 2}, {uint64(1 << 63), 2}}
	for _, c := range cases {
		if got, err := r.Shard(c.key); err != nil || got != c.want {
			t.Errorf("Shard(%v) = %d, %v; want %d", c.key, got, err, c.want)
		}
	}
	if got := r.Predicate("k", 1); got != "((k >= 100 AND k < 200))" {
		t.Errorf("Predicate = %q", got)
	}
}

func TestListRule(t *testing.T) {
	p, err := planWith(t, `  - name: a.b
    shard_key: k
    rule: list
    lists: {0: [us, ca], 1: [de]}
`, 2)
	if err != nil {
		t.Fatal(err)
	}
	r := p.Tables[0].Router()
	if got, _ := r.Shard("ca"); got != 0 {
		t.Errorf("ca → %d", got)
	}
	if got, _ := r.Shard([]byte("de")); got != 1 {
		t.Errorf("de → %d", got)
	}
	if _, err := r.Shard("fr"); err == nil || !strings.Contains(err.Error(), `"fr" is in no list`) {
		t.Errorf("fr: err %v; want it named as uncovered", err)
	}
	if got := r.Predicate("k", 0); got != "(k IN ('us','ca'))" && got != "(k IN ('ca','us'))" {
		t.Errorf("Predicate = %q", got)
	}
}

func TestPlanErrors(t *testing.T) {
	cases := []struct {
		name, tables string
		want         string
	}{
		{"gap", "  - {name: a.b, shard_key: k, rule: range, ranges: [{shard: 0, to: 10}, {shard: 1, from: 20}]}\n", "keys from 10 to 20 uncovered"},
		{"low end", "  - {name: a.b, shard_key: k, rule: range, ranges: [{shard: 0, from: 0, to: 10}, {shard: 1, from: 10}]}\n", "keys below 0 uncovered"},
		{"high end", "  - {name: a.b, shard_key: k, rule: range, ranges: [{shard: 0, to: 10}, {shard: 1, from: 10, to: 20}]}\n", "keys from 20 up uncovered"},
		{"overlap", "  - {name: a.b, shard_key: k, rule: range, ranges: [{shard: 0, to: 15}, {shard: 1, from: 10}]}\n", "overlap"},
		{"bad shard", "  - {name: a.b, shard_key: k, rule: hash}\n  - {name: a.c, shard_key: k, rule: list, lists: {5: [x]}}\n", "names target 5, but there are 2 targets"},
		{"unknown rule", "  - {name: a.b, shard_key: k, rule: modulo}\n", `rule "modulo": use hash, range or list`},
		{"no key", "  - {name: a.b, rule: hash}\n", "shard_key is empty"},
		{"unknown key", "  - {name: a.b, shard_key: k, rule: hash, shardkey: x}\n", "field shardkey not found"},
		{"bad name", "  - {name: ab, shard_key: k, rule: hash}\n", "name must be schema.table"},
		{"listed twice", "  - {name: a.b, shard_key: k, rule: list, lists: {0: [x], 1: [x]}}\n", `value "x" is listed for targets`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := planWith(t, c.tables, 2)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want it to contain %q", err, c.want)
			}
		})
	}
}

func TestExamplePlanParses(t *testing.T) {
	for _, v := range []string{"HAMAL_MIGRATE_TOKEN", "HAMAL_SOURCE_PASSWORD", "HAMAL_TARGET_PASSWORD"} {
		t.Setenv(v, "secret")
	}
	p, err := Load("../configs/migrate-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 4 || len(p.Tables) != 3 || p.Tables[2].TargetName() != "geo.regions" || p.Sources[0].Password != "secret" {
		t.Fatalf("unexpected plan: %+v", p)
	}
	if s, err := p.Tables[2].Router().Shard("br"); err != nil || s != 3 {
		t.Errorf("default list target: %d, %v", s, err)
	}
	os.Unsetenv("HAMAL_SOURCE_PASSWORD")
	if _, err := Load("../configs/migrate-example.yaml"); err == nil || !strings.Contains(err.Error(), "HAMAL_SOURCE_PASSWORD is not set") {
		t.Errorf("missing env: err %v", err)
	}
}

func TestGTIDReached(t *testing.T) {
	cases := []struct {
		got, want string
		ok        bool
	}{
		{"0-1-10", "0-1-10", true},
		{"0-1-11,1-2-3", "0-1-10", true},
		{"0-1-9", "0-1-10", false},
		{"1-2-3", "0-1-1,1-2-3", false},
		{"0-1-5", "", true},
	}
	for _, c := range cases {
		if got := gtidReached(c.got, c.want); got != c.ok {
			t.Errorf("gtidReached(%q, %q) = %v", c.got, c.want, got)
		}
	}
}

func TestSourceRule(t *testing.T) {
	t.Setenv("HAMAL_SOURCE_PASSWORD", "x")
	t.Setenv("HAMAL_TARGET_PASSWORD", "x")
	p, err := Load("../configs/migrate-merge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tb := p.Tables[0]
	if !p.reversible() || tb.sourceRule == nil || tb.TargetName() != "merged.users" {
		t.Fatalf("merge plan: reversible %v, source rule %v", p.reversible(), tb.sourceRule)
	}
	if s, _ := tb.sourceRule.Shard(int64(1)); s != 2212294583%4 {
		t.Errorf("source_rule hash of 1: shard %d", s)
	}
	if s, _ := tb.rule.Shard(int64(1)); s != 0 {
		t.Errorf("target rule of a merge into one: shard %d", s)
	}
	merge := func(tables string) (*Plan, error) {
		return Parse([]byte("name: m\nstate_dir: /tmp/x\nsources:\n  - {addr: a:1, user: u, server_id: 7}\n  - {addr: b:1, user: u, server_id: 7}\n" +
			"targets:\n  - {addr: c:1, user: u}\ntables:\n" + tables))
	}
	p, err = merge("  - {name: a.b, shard_key: k, rule: hash}\n")
	if err != nil || p.reversible() {
		t.Fatalf("a merge without source_rule: reversible %v, %v", p != nil && p.reversible(), err)
	}
	for _, c := range []struct{ tables, want string }{
		{"  - {name: a.b, shard_key: k, rule: hash, source_rule: {rule: hash}}\n", "source_rule.shard_key is empty"},
		{"  - {name: a.b, shard_key: k, rule: hash, source_rule: {shard_key: k, rule: list, lists: {2: [x]}}}\n", "source_rule: lists[2] names source 2, but there are 2 sources"},
		{"  - {name: a.b, shard_key: k, rule: hash, source_rule: {shard_key: k, rule: range, ranges: [{shard: 0, to: 5}]}}\n", "source_rule: ranges leave keys from 5 up uncovered"},
		{"  - {name: a.b, shard_key: k, rule: hash, source_rule: {shard_key: k, rul: hash}}\n", "field rul not found"},
	} {
		if _, err := merge(c.tables); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v; want %q", strings.TrimSpace(c.tables), err, c.want)
		}
	}
	if _, err := planWith(t, "  - {name: a.b, shard_key: k, rule: hash, source_rule: {shard_key: k, rule: hash}}\n", 2); err == nil || !strings.Contains(err.Error(), "source_rule is for several sources") {
		t.Errorf("source_rule with one source: %v", err)
	}
}

func TestPlanBatchLinger(t *testing.T) {
	const table = "  - {name: a.b, shard_key: k, rule: hash}\n"
	cases := []struct {
		apply string
		want  time.Duration
		err   string
	}{
		{"", config.DefaultBatchLinger, ""},
		{"apply: {batch_linger: 0s}\n", 0, ""},
		{"apply: {batch_linger: 20ms}\n", 20 * time.Millisecond, ""},
		{"apply: {batch_linger: 2s}\n", 0, "apply.batch_linger: 2s is out of range 0s..1s"},
		{"apply: {batch_linger: -1ms}\n", 0, "apply.batch_linger: -1ms is out of range"},
	}
	for _, c := range cases {
		p, err := planWith(t, table+c.apply, 2)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err = %v; want it to contain %q", c.apply, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.apply, err)
		}
		if w := p.Apply.daemon().Window(); w.Linger != c.want || w.MaxTxns != config.DefaultWindowTxns || w.MaxBytes != config.DefaultWindowBytes {
			t.Errorf("%q: channel window %+v, want linger %s and the default size", c.apply, w, c.want)
		}
	}
}

// TestPlanConnectionKeys: a plan's servers take the MySQL driver's
// connection keys (tls, password_file) and the plan's conflicts are
// checked as a channel's sink.conflicts.
func TestPlanConnectionKeys(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plan := func(source, extra string) (*Plan, error) {
		return Parse([]byte("name: c\nstate_dir: /tmp/x\nsources:\n  - {addr: 'db1.example:3306', user: u, server_id: 7" + source + "}\n" +
			"targets:\n  - {addr: 'db2.example:3306', user: u, tls: {enabled: true}}\ntables:\n  - {name: a.b, shard_key: k, rule: hash}\n" + extra))
	}
	p, err := plan(", password_file: "+pw, "conflicts: {tables: {a.b: {policy: last-writer-wins, column: updated_at}}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.Sources[0].Password != "from-file" || p.Conflicts.Tables["a.b"].Column != "updated_at" {
		t.Errorf("password %q, conflicts %+v", p.Sources[0].Password, p.Conflicts)
	}
	if tc, err := p.Targets[0].TLSConfig(); err != nil || tc == nil || tc.ServerName != "db2.example" {
		t.Errorf("targets[0] TLS: %+v, %v", tc, err)
	}
	if tc, err := p.Sources[0].TLSConfig(); err != nil || tc != nil {
		t.Errorf("sources[0] without tls: %+v, %v", tc, err)
	}
	if src := p.sourceConfig(0, "0-1-5"); src.Conn.Password != "from-file" || src.Start != "0-1-5" || src.Tables[0] != "a.b" {
		t.Errorf("catch-up source block %+v", src)
	}
	for _, c := range []struct{ source, extra, want string }{
		{", tls: {ca: /nonexistent/ca.pem}", "", "sources[0].tls.ca: stat /nonexistent/ca.pem"},
		{", tls: {cert: " + pw + "}", "", "sources[0].tls: cert and key go together"},
		{", tls: {verify: true}", "", "field verify not found"},
		{", password: x, password_file: " + pw, "", "sources[0].password and sources[0].password_file are both set"},
		{"", "conflicts: {default: newest}\n", `conflicts.default: policy "newest" is not one of`},
		{"", "conflicts: {tables: {a.b: {policy: last-writer-wins}}}\n", "conflicts.tables.a.b.column: required by last-writer-wins"},
	} {
		if _, err := plan(c.source, c.extra); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %q: err %v, want %q", c.source, c.extra, err, c.want)
		}
	}
}
