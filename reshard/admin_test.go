package reshard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestAdminNeedsTokenForEveryMutation: with admin.token set, each POST
// endpoint refuses a request without it, or with another, before doing
// anything; /status without the token redacts row data from the last
// error, and shows it in full with the token.
func TestAdminNeedsTokenForEveryMutation(t *testing.T) {
	const token = "migrate-t0ken-long"
	m := &Migration{plan: &Plan{Name: "x", Admin: Admin{Token: token}}, st: &State{Phase: PhaseCatchup, Segments: map[string]*Segment{}},
		lastErr: "catch-up channel migrate-x-0: sink: Error 1062: Duplicate entry 'secret-42' for key 'PRIMARY'"}
	srv := httptest.NewServer(m.Handler(prometheus.NewRegistry()))
	defer srv.Close()
	do := func(method, path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/cutover", "/cancel", "/complete", "/verify", "/resume"} {
		for _, auth := range []string{"", "Bearer wrong", token, "Bearer " + token + "x"} {
			if code, body := do("POST", path, auth); code != http.StatusUnauthorized {
				t.Errorf("POST %s with %q = %d %q, want 401", path, auth, code, body)
			}
		}
	}
	if m.st.Phase != PhaseCatchup {
		t.Errorf("phase %s after refused requests", m.st.Phase)
	}
	if _, body := do("GET", "/status", ""); strings.Contains(body, "secret-42") || !strings.Contains(body, "Duplicate entry '…'") {
		t.Errorf("unauthenticated /status: %s", body)
	}
	if _, body := do("GET", "/status", "Bearer "+token); !strings.Contains(body, "secret-42") {
		t.Errorf("/status with the token lacks the full error: %s", body)
	}
	// The channels' own error message says "POST /resume": the migration
	// answers it (no channel in state error here: none resumed).
	if code, body := do("POST", "/resume", "Bearer "+token); code != http.StatusOK || !strings.Contains(body, `"resumed":0`) {
		t.Errorf("POST /resume with the token = %d %s", code, body)
	}
}

// TestPlanAdminListen: a plan listening beyond loopback needs a token,
// which may come from a file.
func TestPlanAdminListen(t *testing.T) {
	dir := t.TempDir()
	tokenFile := dir + "/token"
	if err := writeFile(tokenFile, "tok-from-file\n"); err != nil {
		t.Fatal(err)
	}
	base := func(admin string) string {
		return "name: p\nstate_dir: " + dir + "/state\nadmin: " + admin + "\nsources:\n  - {addr: 127.0.0.1:1, user: u, server_id: 9}\ntargets:\n  - {addr: 127.0.0.1:2, user: u}\ntables:\n  - {name: app.t, shard_key: id, rule: hash}\n"
	}
	for _, tc := range []struct{ admin, err, token string }{
		{"{listen: 0.0.0.0:9660}", "admin.listen 0.0.0.0:9660 is not a loopback address and no admin.token is set", ""},
		{"{listen: \"[::]:9660\"}", "is not a loopback address", ""},
		{"{listen: 0.0.0.0:9660, token_file: " + tokenFile + "}", "", "tok-from-file"},
		{"{listen: 127.0.0.1:9660}", "", ""},
		{"{listen: localhost:9660}", "", ""},
		{"{token: a, token_file: " + tokenFile + "}", "both set", ""},
	} {
		path := dir + "/plan.yaml"
		if err := writeFile(path, base(tc.admin)); err != nil {
			t.Fatal(err)
		}
		p, err := Load(path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("admin %s: err %v, want %q", tc.admin, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("admin %s: %v", tc.admin, err)
			continue
		}
		if p.Admin.Token != tc.token {
			t.Errorf("admin %s: token %q, want %q", tc.admin, p.Admin.Token, tc.token)
		}
	}
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }
