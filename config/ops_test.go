package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const opsBase = `name: ops
source: {kind: mysql, addr: "127.0.0.1:3306", user: r, server_id: 7}
sink: {kind: mysql, addr: "127.0.0.1:3307", user: w}
checkpoint: {dir: /tmp/x}
`

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
			if c.Source.TLS.Enabled || c.Source.Heartbeat.Enabled || c.Admin.Token != "" {
				t.Errorf("TLS, heartbeat and token must default to off: %+v %+v %q", c.Source.TLS, c.Source.Heartbeat, c.Admin.Token)
			}
		}},
		{"heartbeat default interval", "source: {heartbeat: {enabled: true}}", "", func(t *testing.T, c *Config) {
			if c.Source.Heartbeat.Interval != time.Second {
				t.Errorf("interval %s, want 1s", c.Source.Heartbeat.Interval)
			}
		}},
		{"heartbeat too fast", "source: {heartbeat: {enabled: true, interval: 10ms}}", "source.heartbeat.interval: 10ms is below 100ms", nil},
		{"token file", "admin: {token_file: " + tokenFile + "}", "", func(t *testing.T, c *Config) {
			if c.Admin.Token != "tok-1" || c.Redacted().Admin.Token != "***" {
				t.Errorf("token %q, redacted %q", c.Admin.Token, c.Redacted().Admin.Token)
			}
		}},
		{"token twice", "admin: {token: a, token_file: " + tokenFile + "}", "admin.token and admin.token_file are both set", nil},
		{"empty token file", "admin: {token_file: " + empty + "}", "is empty", nil},
		{"tls ca enables", "sink: {tls: {ca: " + ca + "}}", "", func(t *testing.T, c *Config) {
			if !c.Sink.TLS.Enabled || c.Sink.TLS.SkipVerify {
				t.Errorf("sink TLS %+v: want enabled and verifying", c.Sink.TLS)
			}
			if _, err := c.Sink.TLS.Config("db"); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
				t.Errorf("a CA file without PEM: %v", err)
			}
		}},
		{"tls cert without key", "source: {tls: {cert: " + ca + "}}", "source.tls: cert and key go together", nil},
		{"tls missing file", "source: {tls: {ca: /nonexistent/ca.pem}}", "source.tls.ca: stat /nonexistent/ca.pem", nil},
		{"tls typo", "source: {tls: {verify: false}}", `source.tls.verify: unknown key`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(mergeYAML(opsBase, tc.extra)))
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
	if c, _ := Parse([]byte(opsBase)); c != nil {
		if tc, err := c.Source.TLS.Config("db"); tc != nil || err != nil {
			t.Errorf("TLS off gives %v %v, want nil nil", tc, err)
		}
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

// TestReferenceConfig parses configs/reference.yaml, which lists every key.
func TestReferenceConfig(t *testing.T) {
	t.Setenv("SRC_PASSWORD", "x")
	if _, err := Load("../configs/reference.yaml"); err != nil {
		t.Fatal(err)
	}
}
