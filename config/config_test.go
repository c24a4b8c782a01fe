package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The engines' blocks are tested with their drivers (engine/*) and whole
// files with the build's registry (engine/registry). These tests hold the
// generic decoder to its contract with a block that uses every mechanism
// an engine's block may: inline fields, a nested block, a secret, TLS.

type testConn struct {
	Addr         string `yaml:"addr"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	TLS          TLS    `yaml:"tls"`
}

type testBlock struct {
	testConn `yaml:",inline"`
	Nested   *struct {
		Topic string `yaml:"topic"`
	} `yaml:"nested"`
	Path, Site string // the scope Validate ran in
}

func (b *testBlock) Validate(s *Scope) {
	b.Path, b.Site = s.Path, s.Site
	s.Addr("addr", b.Addr)
	s.Secret(&b.Password, b.PasswordFile)
	s.TLS("tls", &b.TLS)
	if b.Nested != nil && b.Nested.Topic == "" {
		s.Bad("%s: required", s.Sub("nested").Key("topic"))
	}
}

func (b *testBlock) Redacted() Block {
	r := *b
	r.Password = "***"
	return &r
}

// testKinds has kind "test" on both sides and "readonly" as a source only.
type testKinds struct{}

func (testKinds) SourceBlock(kind string) (Block, error) {
	switch kind {
	case "test", "readonly":
		return &testBlock{}, nil
	case "":
		return nil, errors.New("required; supported: readonly, test")
	}
	return nil, fmt.Errorf("unknown kind %q; supported: readonly, test", kind)
}

func (testKinds) SinkBlock(kind string) (Block, error) {
	switch kind {
	case "test":
		return &testBlock{}, nil
	case "readonly":
		return nil, errors.New(`"readonly" cannot be a sink; supported: test`)
	case "":
		return nil, errors.New("required; supported: test")
	}
	return nil, fmt.Errorf("unknown kind %q; supported: test", kind)
}

const example = `name: demo
source:
  kind: test
  addr: 127.0.0.1:23306
  password: ${SRC_PASSWORD}
sink:
  kind: test
  addr: 127.0.0.1:23307
apply:
  workers: 16
checkpoint:
  dir: ./var/demo
admin:
  listen: 127.0.0.1:9650
`

func parse(text string) (*Config, error) { return Parse([]byte(text), testKinds{}) }

func TestParse(t *testing.T) {
	t.Setenv("SRC_PASSWORD", "s3cr:et#1")
	cfg, err := parse(example)
	if err != nil {
		t.Fatal(err)
	}
	src, ok := cfg.Source.Engine.(*testBlock)
	if !ok || src.Addr != "127.0.0.1:23306" || src.Password != "s3cr:et#1" || src.Path != "source" {
		t.Fatalf("source block = %#v", cfg.Source.Engine)
	}
	if snk := cfg.Sink.Engine.(*testBlock); snk.Addr != "127.0.0.1:23307" || snk.Path != "sink" {
		t.Fatalf("sink block = %#v", snk)
	}
	if cfg.Apply.Workers != 16 || cfg.Apply.BatchTxns != DefaultBatchTxns || cfg.Source.Forward != "all" {
		t.Fatalf("apply/forward = %+v %q", cfg.Apply, cfg.Source.Forward)
	}
	if cfg.Checkpoint.Interval != time.Second || cfg.Admin.Listen != "127.0.0.1:9650" || cfg.Log.Level != "info" {
		t.Fatalf("defaults = %+v %+v %+v", cfg.Checkpoint, cfg.Admin, cfg.Log)
	}
	if r := cfg.Redacted(); r.Source.Engine.(*testBlock).Password != "***" || src.Password == "***" {
		t.Fatalf("redaction: %+v / %q", r.Source.Engine, src.Password)
	}
}

func TestParseErrors(t *testing.T) {
	os.Unsetenv("HAMAL_TEST_UNSET")
	cases := []struct {
		name string
		edit func(string) string
		want []string
	}{
		{"unknown engine key with path and suggestion", func(s string) string {
			return strings.Replace(s, "  addr: 127.0.0.1:23306", "  addr: 127.0.0.1:23306\n  passwrd: x", 1)
		}, []string{"source.passwrd: unknown key for a test source", `did you mean "source.password"`}},
		{"unknown engine key lists the engine's and the generic keys", func(s string) string {
			return strings.Replace(s, "  addr: 127.0.0.1:23307", "  addr: 127.0.0.1:23307\n  server_id: 5", 1)
		}, []string{"sink.server_id: unknown key for a test sink", "known keys here: addr, kind, nested, password, password_file, site, tls"}},
		{"unknown key in an engine's nested block", func(s string) string {
			return strings.Replace(s, "  addr: 127.0.0.1:23307", "  addr: 127.0.0.1:23307\n  nested: {topik: x}", 1)
		}, []string{"sink.nested.topik: unknown key", `did you mean "sink.nested.topic"`}},
		{"unknown top-level key", func(s string) string { return s + "sinks: {}\n" },
			[]string{"sinks: unknown key", `did you mean "sink"`}},
		{"unknown key without near match lists known keys", func(s string) string {
			return strings.Replace(s, "  workers: 16", "  workers: 16\n  zzzzzz: 1", 1)
		}, []string{"apply.zzzzzz: unknown key", "known keys here: batch_bytes"}},
		{"unset env var", func(s string) string {
			return strings.Replace(s, "${SRC_PASSWORD}", "${HAMAL_TEST_UNSET}", 1)
		}, []string{"source.password: environment variable HAMAL_TEST_UNSET is not set"}},
		{"engine's validation", func(s string) string { return strings.Replace(s, "127.0.0.1:23307", "localhost", 1) },
			[]string{`sink.addr: "localhost" is not host:port`}},
		{"nested validation", func(s string) string {
			return strings.Replace(s, "  addr: 127.0.0.1:23307", "  addr: 127.0.0.1:23307\n  nested: {}", 1)
		}, []string{"sink.nested.topic: required"}},
		{"unknown kind, reported with the other problems", func(s string) string {
			return strings.Replace(strings.Replace(s, "kind: test\n  addr: 127.0.0.1:23307", "kind: tset\n  addr: 127.0.0.1:23307", 1), "workers: 16", "workers: -1", 1)
		}, []string{`sink.kind: unknown kind "tset"; supported: test`, "apply.workers: -1 is out of range"}},
		{"missing kind", func(s string) string {
			return strings.Replace(s, "  kind: test\n  addr: 127.0.0.1:23306", "  addr: 127.0.0.1:23306", 1)
		},
			[]string{"source.kind: required; supported: readonly, test"}},
		{"kind that cannot be a sink", func(s string) string {
			return strings.Replace(s, "kind: test\n  addr: 127.0.0.1:23307", "kind: readonly\n  addr: 127.0.0.1:23307", 1)
		}, []string{`sink.kind: "readonly" cannot be a sink`}},
		{"wrong type", func(s string) string { return strings.Replace(s, "workers: 16", "workers: many", 1) },
			[]string{"decode", "many"}},
		{"wrong type in an engine block", func(s string) string {
			return strings.Replace(s, "  addr: 127.0.0.1:23307", "  addr: 127.0.0.1:23307\n  nested: [1]", 1)
		}, []string{"sink.nested: expected a mapping"}},
		{"negative linger", func(s string) string {
			return strings.Replace(s, "workers: 16", "workers: 16\n  batch_linger: -5ms", 1)
		}, []string{"apply.batch_linger: -5ms is out of range 0s..1s"}},
		{"linger not a duration", func(s string) string {
			return strings.Replace(s, "workers: 16", "workers: 16\n  batch_linger: soon", 1)
		}, []string{"decode", "soon"}},
	}
	t.Setenv("SRC_PASSWORD", "x")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.edit(example)
			if text == example {
				t.Fatal("the edit did not apply")
			}
			_, err := parse(text)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestEnvDefaultAndPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("from-file\n"), 0o600)
	text := strings.Replace(example, "  password: ${SRC_PASSWORD}\n", "  password_file: "+pw+"\n", 1)
	text = strings.Replace(text, "addr: 127.0.0.1:23307", "addr: ${HAMAL_TEST_UNSET:-127.0.0.9:1}", 1)
	cfg, err := parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if src, snk := cfg.Source.Engine.(*testBlock), cfg.Sink.Engine.(*testBlock); src.Password != "from-file" || snk.Addr != "127.0.0.9:1" {
		t.Fatalf("password %q addr %q", src.Password, snk.Addr)
	}
	text = strings.Replace(text, "  password_file: "+pw+"\n", "  password_file: "+pw+"\n  password: x\n", 1)
	if _, err := parse(text); err == nil || !strings.Contains(err.Error(), "source.password and source.password_file are both set") {
		t.Fatalf("both password keys: %v", err)
	}
}

func TestSites(t *testing.T) {
	base := "name: x\nsource: {kind: test, addr: 'h:1'%s}\nsink: {kind: test, addr: 'h:2'%s}\ncheckpoint: {dir: d}\n"
	cases := []struct {
		name, src, snk, wantErr string
	}{
		{"none", "", "", ""},
		{"both", ", site: sz", ", site: sh", ""},
		{"local mesh", ", site: sz, forward: local", ", site: sh", ""},
		{"only sink", "", ", site: sh", "source.site: required when sink.site is set"},
		{"only source", ", site: sz", "", "sink.site: required when source.site is set"},
		{"same", ", site: sz", ", site: sz", `both "sz"`},
		{"bad name", ", site: 'a,b'", ", site: sh", `source.site: "a,b"`},
		{"forward without sites", ", forward: local", "", "source.forward: needs source.site"},
		{"bad forward", ", forward: some", "", `source.forward: "some" is not one of all, local`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(fmt.Sprintf(base, tc.src, tc.snk))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				// Each block validates knowing its side's site.
				if cfg.Source.Engine.(*testBlock).Site != cfg.Source.Site || cfg.Sink.Engine.(*testBlock).Site != cfg.Sink.Site {
					t.Errorf("blocks validated with sites %q/%q, config has %q/%q", cfg.Source.Engine.(*testBlock).Site,
						cfg.Sink.Engine.(*testBlock).Site, cfg.Source.Site, cfg.Sink.Site)
				}
				g, err := cfg.LoopGuard()
				if err != nil || (g == nil) != (cfg.Source.Site == "") {
					t.Errorf("LoopGuard() = %v, %v", g, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestBatchLinger: apply.batch_linger defaults to DefaultBatchLinger when
// absent, and an explicit 0s turns the wait off.
func TestBatchLinger(t *testing.T) {
	t.Setenv("SRC_PASSWORD", "x")
	cases := []struct {
		name, line string
		want       time.Duration
	}{
		{"absent", "", DefaultBatchLinger},
		{"explicit", "\n  batch_linger: 20ms", 20 * time.Millisecond},
		{"off", "\n  batch_linger: 0s", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parse(strings.Replace(example, "workers: 16", "workers: 16"+c.line, 1))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Apply.Linger(); got != c.want {
				t.Fatalf("Linger() = %s, want %s", got, c.want)
			}
		})
	}
}

// TestApplyWindow: the DAG window takes the configured sizes and linger,
// and the defaults for those left out (as bench and reshard channels use it).
func TestApplyWindow(t *testing.T) {
	if w := (Apply{}).Window(); w.MaxTxns != DefaultWindowTxns || w.MaxBytes != DefaultWindowBytes || w.Linger != DefaultBatchLinger || w.Chain {
		t.Errorf("zero Apply: window %+v, want the defaults", w)
	}
	off := time.Duration(0)
	if w := (Apply{WindowTxns: 500, WindowBytes: 1 << 20, BatchLinger: &off}).Window(); w.MaxTxns != 500 || w.MaxBytes != 1<<20 || w.Linger != 0 {
		t.Errorf("configured Apply: window %+v, want 500 Txns, 1 MiB, no linger", w)
	}
}

// TestSuggest: a near miss is suggested, a far one is not.
func TestSuggest(t *testing.T) {
	names := []string{"kafka", "mongo", "mysql", "redis"}
	for key, want := range map[string]string{"mongodb": "mongo", "mysq": "mysql", "postgres": "", "redsi": "redis"} {
		if got := Suggest(key, names); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", key, got, want)
		}
	}
}
