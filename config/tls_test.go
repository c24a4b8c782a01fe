package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const opsBase = `name: ops
source: {kind: test, addr: "127.0.0.1:3306"}
sink: {kind: test, addr: "127.0.0.1:3307"}
checkpoint: {dir: /tmp/x}
`

// TestOpsKeys: the admin token, and the TLS block an engine's keys hold.
func TestOpsKeys(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("tok-1\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, []byte("not a pem"), 0o600)

	for _, tc := range []struct {
		name  string
		extra string
		err   string // substring; "" means valid
		check func(t *testing.T, c *Config)
	}{
		{"defaults", "", "", func(t *testing.T, c *Config) {
			if c.Source.Engine.(*testBlock).TLS.Enabled || c.Admin.Token != "" {
				t.Errorf("TLS and token must default to off: %+v %q", c.Source.Engine.(*testBlock).TLS, c.Admin.Token)
			}
		}},
		{"token file", "admin: {token_file: " + tokenFile + "}", "", func(t *testing.T, c *Config) {
			if c.Admin.Token != "tok-1" || c.Redacted().Admin.Token != "***" {
				t.Errorf("token %q, redacted %q", c.Admin.Token, c.Redacted().Admin.Token)
			}
		}},
		{"token twice", "admin: {token: a, token_file: " + tokenFile + "}", "admin.token and admin.token_file are both set", nil},
		{"empty token file", "admin: {token_file: " + empty + "}", "is empty", nil},
		{"tls ca enables", "sink: {tls: {ca: " + ca + "}}", "", func(t *testing.T, c *Config) {
			tls := c.Sink.Engine.(*testBlock).TLS
			if !tls.Enabled || tls.SkipVerify {
				t.Errorf("sink TLS %+v: want enabled and verifying", tls)
			}
			if _, err := tls.Config("db"); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
				t.Errorf("a CA file without PEM: %v", err)
			}
		}},
		{"tls cert without key", "source: {tls: {cert: " + ca + "}}", "source.tls: cert and key go together", nil},
		{"tls missing file", "source: {tls: {ca: /nonexistent/ca.pem}}", "source.tls.ca: stat /nonexistent/ca.pem", nil},
		{"tls typo", "source: {tls: {verify: false}}", `source.tls.verify: unknown key`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(mergeYAML(opsBase, tc.extra))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
	if tc, err := (TLS{}).Config("db"); tc != nil || err != nil {
		t.Errorf("TLS off gives %v %v, want nil nil", tc, err)
	}
}

// mergeYAML appends extra's flow mappings to the matching top-level block
// of base (enough for these tests: one line per section).
func mergeYAML(base, extra string) string {
	if extra == "" {
		return base
	}
	section, body, _ := strings.Cut(extra, ": ")
	lines := strings.Split(base, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, section+": {") {
			lines[i] = strings.TrimSuffix(l, "}") + ", " + strings.TrimPrefix(strings.TrimSuffix(body, "}"), "{") + "}"
			return strings.Join(lines, "\n")
		}
	}
	return base + extra + "\n"
}
