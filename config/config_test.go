package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// issueExample is the config the README and configs/demo.yaml promise works
// exactly as written.
const issueExample = `name: demo
source:
  kind: mysql
  addr: 127.0.0.1:23306
  user: repl
  password: ${SRC_PASSWORD}
  server_id: 1001
  start: current
  tables: ["app.*"]
sink:
  kind: mysql
  addr: 127.0.0.1:23307
  user: root
  password: ""
apply:
  workers: 16
checkpoint:
  dir: ./var/demo
admin:
  listen: 127.0.0.1:9650
`

func TestParseIssueExample(t *testing.T) {
	t.Setenv("SRC_PASSWORD", "s3cr:et#1")
	cfg, err := Parse([]byte(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Password != "s3cr:et#1" || cfg.Source.ServerID != 1001 || cfg.Source.Tables[0] != "app.*" {
		t.Fatalf("source = %+v", cfg.Source)
	}
	if cfg.Sink.Password != "" || cfg.Apply.Workers != 16 || cfg.Apply.BatchTxns != DefaultBatchTxns {
		t.Fatalf("sink/apply = %+v %+v", cfg.Sink, cfg.Apply)
	}
	if cfg.Checkpoint.Interval != time.Second || cfg.Admin.Listen != "127.0.0.1:9650" || cfg.Log.Level != "info" {
		t.Fatalf("defaults = %+v %+v %+v", cfg.Checkpoint, cfg.Admin, cfg.Log)
	}
	if r := cfg.Redacted(); r.Source.Password != "***" || cfg.Source.Password == "***" {
		t.Fatalf("redaction: %q / %q", r.Source.Password, cfg.Source.Password)
	}
}

func TestConfigsDirectoryParses(t *testing.T) {
	t.Setenv("SRC_PASSWORD", "x")
	files, _ := filepath.Glob("../configs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configs in configs/")
	}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "migrate-") {
			continue // a migration plan, not a channel config: reshard's tests load it
		}
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	os.Unsetenv("HAMAL_TEST_UNSET")
	cases := []struct {
		name string
		edit func(string) string
		want []string
	}{
		{"unknown key with path and suggestion", func(s string) string {
			return strings.Replace(s, "  user: repl", "  user: repl\n  passwrd: x", 1)
		}, []string{"source.passwrd: unknown key", `did you mean "source.password"`}},
		{"unknown top-level key", func(s string) string { return s + "sinks: {}\n" },
			[]string{"sinks: unknown key", `did you mean "sink"`}},
		{"unknown key without near match lists known keys", func(s string) string {
			return strings.Replace(s, "  workers: 16", "  workers: 16\n  zzzzzz: 1", 1)
		}, []string{"apply.zzzzzz: unknown key", "known keys here: batch_bytes"}},
		{"unset env var", func(s string) string {
			return strings.Replace(s, "${SRC_PASSWORD}", "${HAMAL_TEST_UNSET}", 1)
		}, []string{"source.password: environment variable HAMAL_TEST_UNSET is not set"}},
		{"missing server id", func(s string) string { return strings.Replace(s, "  server_id: 1001\n", "", 1) },
			[]string{"source.server_id: required"}},
		{"bad addr", func(s string) string { return strings.Replace(s, "127.0.0.1:23307", "localhost", 1) },
			[]string{`sink.addr: "localhost" is not host:port`}},
		{"unsupported kind", func(s string) string {
			return strings.Replace(s, "kind: mysql\n  addr: 127.0.0.1:23307", "kind: mongodb\n  addr: 127.0.0.1:23307", 1)
		},
			[]string{`sink.kind: "mongodb" is not supported yet`}},
		{"bad glob", func(s string) string { return strings.Replace(s, `["app.*"]`, `["app"]`, 1) },
			[]string{`source.tables[0]: "app" is not a schema.table glob`}},
		{"wrong type", func(s string) string { return strings.Replace(s, "workers: 16", "workers: many", 1) },
			[]string{"decode", "many"}},
		{"negative linger", func(s string) string {
			return strings.Replace(s, "workers: 16", "workers: 16\n  batch_linger: -5ms", 1)
		},
			[]string{"apply.batch_linger: -5ms is out of range 0s..1s"}},
		{"linger not a duration", func(s string) string {
			return strings.Replace(s, "workers: 16", "workers: 16\n  batch_linger: soon", 1)
		},
			[]string{"decode", "soon"}},
	}
	t.Setenv("SRC_PASSWORD", "x")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.edit(issueExample)))
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
	text := strings.Replace(issueExample, "  password: ${SRC_PASSWORD}\n", "  password_file: "+pw+"\n", 1)
	text = strings.Replace(text, "user: root", "user: ${HAMAL_TEST_UNSET:-admin}", 1)
	cfg, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Password != "from-file" || cfg.Sink.User != "admin" {
		t.Fatalf("password %q user %q", cfg.Source.Password, cfg.Sink.User)
	}
}

func TestSites(t *testing.T) {
	base := "name: x\nsource: {kind: mysql, addr: 'h:1', user: u, server_id: 1%s}\nsink: {kind: mysql, addr: 'h:2', user: u%s}\ncheckpoint: {dir: d}\n"
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
		{"bad schema", "", ", hamal_schema: 'x-y'", "sink.hamal_schema"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(fmt.Sprintf(base, tc.src, tc.snk)))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Sink.HamalSchema != "hamal" || cfg.Source.HamalSchema != "hamal" {
					t.Errorf("hamal_schema defaults: %q %q", cfg.Source.HamalSchema, cfg.Sink.HamalSchema)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestConflictPolicies(t *testing.T) {
	base := "name: x\nsource: {kind: mysql, addr: 'h:1', user: u, server_id: 1, site: a}\nsink:\n  kind: mysql\n  addr: 'h:2'\n  user: u\n  site: b\n  conflicts:\n%scheckpoint: {dir: d}\n"
	cases := []struct{ name, conflicts, wantErr string }{
		{"table lww", "    tables:\n      app.users: {policy: last-writer-wins, column: updated_at}\n", ""},
		{"default target", "    default: target-wins\n", ""},
		{"lww without column", "    tables:\n      app.users: {policy: last-writer-wins}\n", "app.users.column: required"},
		{"unknown policy", "    default: newest\n", `"newest" is not one of`},
		{"typo in a table's key", "    tables:\n      app.users: {polcy: target-wins}\n", `sink.conflicts.tables.app.users.polcy: unknown key`},
		{"default lww", "    default: last-writer-wins\n", "set it per table"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(fmt.Sprintf(base, tc.conflicts)))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				_ = cfg
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
			cfg, err := Parse([]byte(strings.Replace(issueExample, "workers: 16", "workers: 16"+c.line, 1)))
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
