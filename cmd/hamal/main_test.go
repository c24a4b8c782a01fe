package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nsource:\n  kind: mysql\n  passwrd: y\n"), 0o644)
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
