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
		{"open listener without token", "admin: {listen: \"0.0.0.0:9650\"}", "admin.listen: 0.0.0.0:9650 is not a loopback address and no admin.token is set", nil},
		{"wildcard listener without token", "admin: {listen: \":9650\"}", "set admin.token_file", nil},
		{"open listener with token file", "admin: {listen: \"0.0.0.0:9650\", token_file: " + tokenFile + "}", "", nil},
		{"localhost listener", "admin: {listen: \"localhost:9650\"}", "", nil},
		{"ipv6 loopback listener", "admin: {listen: \"[::1]:9650\"}", "", nil},
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

// TestTLSBlocks: every tls block of a config is found with its key, also
// through inline and unexported embedded structs, and skip_verify is what
// gets a warning.
func TestTLSBlocks(t *testing.T) {
	c, err := parse(mergeYAML(mergeYAML(opsBase, "source: {tls: {skip_verify: true}}"), "sink: {tls: {enabled: true}}"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.TLSBlocks()
	if len(got) != 2 || got[0].Key != "source.tls" || got[1].Key != "sink.tls" {
		t.Fatalf("TLSBlocks = %+v", got)
	}
	if !got[0].TLS.Enabled || !got[0].TLS.SkipVerify || !got[1].TLS.Enabled || got[1].TLS.SkipVerify {
		t.Errorf("blocks %+v", got)
	}
	if w := got[0].TLS.Warning(got[0].Key); !strings.Contains(w, "source.tls.skip_verify is set") {
		t.Errorf("warning %q", w)
	}
	if w := got[1].TLS.Warning(got[1].Key); w != "" {
		t.Errorf("a verifying block warns: %q", w)
	}
	type server struct {
		Name string `yaml:"name"`
		TLS  TLS    `yaml:"tls"`
	}
	plan := struct {
		Targets []server          `yaml:"targets"`
		ByName  map[string]server `yaml:"by_name"`
	}{Targets: []server{{}, {TLS: TLS{Enabled: true}}}, ByName: map[string]server{"b": {}, "a": {}}}
	var keys []string
	for _, b := range TLSBlocks("", plan) {
		keys = append(keys, b.Key)
	}
	if strings.Join(keys, " ") != "targets[0].tls targets[1].tls by_name.a.tls by_name.b.tls" {
		t.Errorf("keys %v", keys)
	}
	for _, tc := range []struct {
		tls  TLS
		want string
	}{
		{TLS{}, "off"},
		{TLS{Enabled: true}, "system's CAs"},
		{TLS{Enabled: true, CA: "/ca.pem"}, "verified against /ca.pem"},
		{TLS{Enabled: true, SkipVerify: true}, "NOT verified"},
	} {
		if got := tc.tls.Describe(); !strings.Contains(got, tc.want) {
			t.Errorf("Describe(%+v) = %q, want %q", tc.tls, got, tc.want)
		}
	}
}

// TestOneOf: empty takes the first choice, a listed value stays, another
// is a problem naming the key and the choices.
func TestOneOf(t *testing.T) {
	s := NewScope("sink.kafka", "")
	a, b, c := "", "whole", "some"
	s.OneOf("transactions", &a, "each", "whole")
	s.OneOf("transactions", &b, "each", "whole")
	s.OneOf("transactions", &c, "each", "whole")
	if a != "each" || b != "whole" || c != "some" {
		t.Errorf("values %q %q %q", a, b, c)
	}
	want := []string{`sink.kafka.transactions: "some" is not one of each, whole`}
	if got := s.Problems(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("problems %q, want %q", got, want)
	}
}
