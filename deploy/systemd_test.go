package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unitKeys reads a unit file into section → key → values.
func unitKeys(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: bad line %q", path, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// TestSystemdUnit checks the unit's contract (one instance per config,
// state directory, restart on failure, SIGTERM with time to drain) and,
// where systemd-analyze is installed, that systemd accepts every key.
func TestSystemdUnit(t *testing.T) {
	const path = "systemd/hamal@.service"
	u := unitKeys(t, path)
	svc := u["Service"]
	want := map[string]string{
		"Restart":            "on-failure",
		"KillSignal":         "SIGTERM",
		"StateDirectory":     "hamal/%i",
		"NoNewPrivileges":    "yes",
		"ProtectSystem":      "strict",
		"DynamicUser":        "yes",
		"PrivateTmp":         "yes",
		"RestrictNamespaces": "yes",
	}
	for k, v := range want {
		if got := svc[k]; len(got) == 0 || got[len(got)-1] != v {
			t.Errorf("[Service] %s = %v, want %s", k, got, v)
		}
	}
	exec0 := strings.Join(svc["ExecStart"], " ")
	if !strings.Contains(exec0, " run --config /etc/hamal/%i.yaml") {
		t.Errorf("ExecStart %q does not run /etc/hamal/%%i.yaml", exec0)
	}
	// The stop timeout must exceed the drain timeout, or systemd kills a
	// drain in progress (harmless for data, but it replays work).
	stop, err := time.ParseDuration(svc["TimeoutStopSec"][0])
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	drain := 30 * time.Second
	if i := strings.Index(exec0, "--drain-timeout "); i >= 0 {
		if drain, err = time.ParseDuration(strings.Fields(exec0[i+len("--drain-timeout "):])[0]); err != nil {
			t.Fatalf("--drain-timeout: %v", err)
		}
	}
	if stop < drain+10*time.Second {
		t.Errorf("TimeoutStopSec %s leaves less than 10s beyond the drain timeout %s", stop, drain)
	}
	if len(u["Install"]["WantedBy"]) == 0 {
		t.Error("[Install] WantedBy missing")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; the unit's keys were checked by hand above only")
	}
	// systemd-analyze checks that ExecStart is executable: point it at
	// one that exists, change nothing else.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := strings.ReplaceAll(string(data), "/usr/local/bin/hamal ", self+" ")
	if err := os.WriteFile(filepath.Join(dir, "hamal@.service"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "hamal@ch1.service")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
