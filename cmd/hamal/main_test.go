package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/config"
)

func TestCommandLine(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nsource:\n  kind: mysql\n  passwrd: y\n"), 0o644)
	open := filepath.Join(t.TempDir(), "open.yaml")
	os.WriteFile(open, []byte(`name: open
source: {kind: mysql, addr: "127.0.0.1:1", user: u, server_id: 9}
sink: {kind: mysql, addr: "127.0.0.1:2", user: u}
checkpoint: {dir: /tmp/hamal-open-never-created}
admin: {listen: "0.0.0.0:9650"}
`), 0o644)
	skip := filepath.Join(t.TempDir(), "skip.yaml")
	os.WriteFile(skip, []byte(`name: skip
source: {kind: mysql, addr: "127.0.0.1:1", user: u, server_id: 9, tls: {skip_verify: true}}
sink: {kind: mysql, addr: "127.0.0.1:2", user: u, tls: {ca: /dev/null}}
checkpoint: {dir: /tmp/hamal-skip-never-created}
`), 0o644)
	openPlan := filepath.Join(t.TempDir(), "open-plan.yaml")
	os.WriteFile(openPlan, []byte(`name: open
state_dir: /tmp/hamal-open-plan-never-created
admin: {listen: "0.0.0.0:9660"}
sources: [{addr: "127.0.0.1:1", user: u, server_id: 9}]
targets: [{addr: "127.0.0.1:2", user: u}]
tables: [{name: app.t, shard_key: id, rule: hash}]
`), 0o644)
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // in stdout or stderr
	}{
		{"no args", nil, 2, "Usage:"},
		{"help", []string{"--help"}, 0, "hamal run"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"version", []string{"version"}, 0, "hamal dev"},
		{"run help", []string{"run", "--help"}, 0, "-exit-on-error"},
		{"check help", []string{"check", "--help"}, 0, "-config"},
		{"status help", []string{"status", "--help"}, 0, "-addr"},
		{"run without config", []string{"run"}, 2, "--config FILE is required"},
		{"run with a bad key", []string{"run", "--config", bad}, 2, "source.passwrd: unknown key"},
		{"check with a bad key", []string{"check", "--config", bad}, 2, `did you mean "source.password"`},
		{"status unreachable", []string{"status", "--addr", "127.0.0.1:1"}, 1, "cannot reach the admin API at 127.0.0.1:1"},
		{"migrate help", []string{"migrate", "--help"}, 0, "cutover"},
		{"migrate start help", []string{"migrate", "start", "--help"}, 0, "-plan"},
		{"migrate without plan", []string{"migrate", "status"}, 2, "--plan FILE is required"},
		{"migrate unknown", []string{"migrate", "frob"}, 2, `unknown subcommand "frob"`},
		{"migrate bad plan", []string{"migrate", "check", "--plan", bad}, 2, "field source not found"},
		{"run on 0.0.0.0 without a token", []string{"run", "--config", open}, 2, "admin.listen: 0.0.0.0:9650 is not a loopback address and no admin.token is set"},
		{"check on 0.0.0.0 without a token", []string{"check", "--config", open}, 2, "set admin.token_file"},
		{"check reports skip_verify", []string{"check", "--config", skip}, 1, "WARN  source.tls.skip_verify is set: the server certificate is not verified"},
		{"migrate start on 0.0.0.0 without a token", []string{"migrate", "start", "--plan", openPlan}, 2, "admin.listen 0.0.0.0:9660 is not a loopback address and no admin.token is set"},
		{"stray argument", []string{"run", "--config", bad, "extra"}, 2, "unexpected arguments: extra"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
				t.Errorf("exit %d, output %q; want exit %d and %q", code, out, tc.wantCode, tc.wantOut)
			}
		})
	}
}

// TestWarnTLS: hamal run, migrate start and failover-report log a warning
// at start for each tls block that does not verify its server.
func TestWarnTLS(t *testing.T) {
	var buf bytes.Buffer
	warnTLS(slog.New(slog.NewTextHandler(&buf, nil)), []config.TLSAt{
		{Key: "source.tls", TLS: config.TLS{Enabled: true, SkipVerify: true}},
		{Key: "sink.tls", TLS: config.TLS{Enabled: true, CA: "/ca.pem"}},
	})
	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "source.tls.skip_verify is set") || strings.Contains(out, "sink.tls") {
		t.Errorf("log:\n%s", out)
	}
}
