package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
)

// Known secrets: none of them may appear in any log line, /status, /metrics
// or `hamal status` output.
const (
	opsSourcePassword = "Src-Pw-7c1e5a"
	opsSinkPassword   = "Dst-Pw-93ab0f"
	opsAdminToken     = "Tok-4d2e8b19"
)

// opsGrants are the least-privilege grants docs/deploy.md lists.
var (
	opsSourceGrants = []string{
		"CREATE USER 'hsrc'@'%' IDENTIFIED BY '" + opsSourcePassword + "'",
		"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'hsrc'@'%'",
		"GRANT CREATE, INSERT, DELETE ON hamal.* TO 'hsrc'@'%'",
	}
	opsSinkGrants = []string{
		"CREATE USER 'hdst'@'%' IDENTIFIED BY '" + opsSinkPassword + "'",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON app.* TO 'hdst'@'%'",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON hamal.* TO 'hdst'@'%'",
	}
)

// writeOpsConfig writes a channel config that takes the source password
// from the environment, the sink password and the admin token from files,
// and enables the source heartbeat.
func writeOpsConfig(t *testing.T, src, dst *harness.Server, name string) *channel {
	t.Helper()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for file, secret := range map[string]string{"sink-pw": opsSinkPassword, "token": opsAdminToken} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &channel{dir: dir, path: filepath.Join(dir, "hamal.yaml"), adminAddr: fmt.Sprintf("127.0.0.1:%d", port), name: name}
	text := fmt.Sprintf(`name: %s
source:
  kind: mysql
  addr: %s
  user: hsrc
  password: ${HAMAL_OPS_SRC_PW}
  server_id: 4343
  start: current
  tables: ["app.ops"]
  heartbeat: {enabled: true, interval: 200ms}
sink:
  kind: mysql
  addr: %s
  user: hdst
  password_file: %s
apply:
  workers: 4
checkpoint:
  dir: %s
  interval: 200ms
admin:
  listen: %s
  token_file: %s
log:
  level: debug
`, name, src.Addr, dst.Addr, filepath.Join(dir, "sink-pw"), filepath.Join(dir, "state"), c.adminAddr, filepath.Join(dir, "token"))
	if err := os.WriteFile(c.path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func opsEnv() []string { return append(os.Environ(), "HAMAL_OPS_SRC_PW="+opsSourcePassword) }

// httpDo sends one request to the admin API and returns status and body.
func httpDo(t *testing.T, method, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrape returns the value of every sample of /metrics, keyed by the
// sample's text before the value (name{labels}).
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	code, body := httpDo(t, "GET", "http://"+addr+"/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestOperationsSurface replicates a known mix of inserts, updates and
// deletes with the source heartbeat on and least-privilege users whose
// passwords come from the environment and a file, then checks the metrics
// against what was written, the heartbeat (written on the source, never
// applied to the target, its lag metric present and moving), the admin
// token, and that no secret appears in any log line or API output.
func TestOperationsSurface(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src, dst := startPair(t)
	src.MustExec(t, append([]string{"CREATE TABLE app.ops (id INT PRIMARY KEY, v INT NOT NULL)"}, opsSourceGrants...)...)
	dst.MustExec(t, append([]string{"CREATE TABLE app.ops (id INT PRIMARY KEY, v INT NOT NULL)"}, opsSinkGrants...)...)
	ch := writeOpsConfig(t, src, dst, "ops1")

	// hamal check passes with exactly these grants.
	cmd := exec.Command(hamalBin, "check", "--config", ch.path)
	cmd.Env = opsEnv()
	checkOut, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hamal check with the documented grants: %v\n%s", err, checkOut)
	}

	run := exec.Command(hamalBin, "run", "--config", ch.path)
	run.Env = opsEnv()
	p := &proc{cmd: run, out: &syncBuffer{}, exited: make(chan struct{})}
	run.Stdout, run.Stderr = p.out, p.out
	waited, err := harness.Spawn(run)
	if err != nil {
		t.Fatal(err)
	}
	go func() { p.err = <-waited; close(p.exited) }()
	defer func() {
		select {
		case <-p.exited:
		default:
			_ = run.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("hamal output:\n%s", lastLines(p.out.String(), 60))
		}
	}()
	ch.waitState(t, 30*time.Second, func(st pipeline.Status) bool { return st.State == pipeline.StateRunning })

	const inserts, updates, deletes = 120, 50, 30
	var stmts []string
	for i := 1; i <= inserts; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO app.ops VALUES (%d, %d)", i, i))
	}
	for i := 1; i <= updates; i++ {
		stmts = append(stmts, fmt.Sprintf("UPDATE app.ops SET v = v + 1000 WHERE id = %d", i))
	}
	for i := inserts - deletes + 1; i <= inserts; i++ {
		stmts = append(stmts, fmt.Sprintf("DELETE FROM app.ops WHERE id = %d", i))
	}
	src.MustExec(t, stmts...)
	waitTablesEqual(t, src, dst, map[string]string{"app.ops": "id"}, time.Minute)

	label := func(name, labels string) string {
		if labels == "" {
			return name + `{channel="ops1"}`
		}
		return name + `{channel="ops1",` + labels + `}`
	}
	// Counters reach exactly what was written (a transient retry would
	// re-apply a batch but count it once, after it succeeded).
	want := map[string]float64{
		label("hamal_applied_rows_total", `op="insert",table="app.ops"`): inserts,
		label("hamal_applied_rows_total", `op="update",table="app.ops"`): updates,
		label("hamal_applied_rows_total", `op="delete",table="app.ops"`): deletes,
		label("hamal_applied_txns_total", `kind="dml"`):                  inserts + updates + deletes,
	}
	// The heartbeat gauges appear once the first heartbeat after the
	// channel's start position was applied (one interval at most after the
	// stream started), so the wait covers them too.
	heartbeat := label("hamal_source_heartbeat_timestamp_seconds", "")
	var m map[string]float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		m = scrape(t, ch.adminAddr)
		_, ok := m[heartbeat]
		for k, v := range want {
			if m[k] != v {
				ok = false
			}
		}
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, name := range []string{label("hamal_source_heartbeat_lag_seconds", ""), label("hamal_replication_lag_seconds", ""),
		label("hamal_source_connected", ""), label("hamal_checkpoint_age_seconds", ""), label("hamal_channel_state", `state="running"`)} {
		if _, ok := m[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if m[label("hamal_source_connected", "")] != 1 || m[label("hamal_channel_state", `state="running"`)] != 1 {
		t.Errorf("source_connected %v, state running %v; want 1 and 1", m[label("hamal_source_connected", "")], m[label("hamal_channel_state", `state="running"`)])
	}

	// The heartbeat keeps arriving while the source is idle: its applied
	// timestamp advances and the source's row is what was last applied or
	// newer.
	first := m[heartbeat]
	if first == 0 {
		t.Fatal("hamal_source_heartbeat_timestamp_seconds is 0 with the heartbeat enabled")
	}
	var later float64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if later = scrape(t, ch.adminAddr)[heartbeat]; later > first {
			break
		}
	}
	if later <= first {
		t.Errorf("heartbeat timestamp did not advance while idle: %v then %v", first, later)
	}
	row := src.MustQuery(t, "SELECT UNIX_TIMESTAMP(ts) FROM hamal.heartbeat WHERE server_id = @@server_id")
	if len(row) != 1 {
		t.Fatalf("hamal.heartbeat on the source holds %d rows for its server_id", len(row))
	}
	if onSource, _ := strconv.ParseFloat(row[0][0], 64); onSource < later-1e-6 {
		t.Errorf("source heartbeat row %v is older than the applied heartbeat %v", onSource, later)
	}
	if n := dst.MustQuery(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='hamal' AND TABLE_NAME='heartbeat'"); n[0][0] != "0" {
		t.Errorf("the heartbeat table was replicated to the target")
	}

	// The token guards pause/resume.
	base := "http://" + ch.adminAddr
	if code, _ := httpDo(t, "POST", base+"/pause", ""); code != http.StatusUnauthorized {
		t.Errorf("POST /pause without the token = %d, want 401", code)
	}
	if code, _ := httpDo(t, "POST", base+"/pause", "Bearer "+opsAdminToken); code != 200 {
		t.Errorf("POST /pause with the token = %d", code)
	}
	ch.waitState(t, 10*time.Second, func(st pipeline.Status) bool { return st.State == pipeline.StatePaused })
	if code, _ := httpDo(t, "POST", base+"/resume", "Bearer "+opsAdminToken); code != 200 {
		t.Errorf("POST /resume with the token = %d", code)
	}
	ch.waitState(t, 10*time.Second, func(st pipeline.Status) bool { return st.State == pipeline.StateRunning })

	// Gather every output an operator or a log collector sees.
	outputs := map[string]string{}
	for _, path := range []string{"/status", "/metrics", "/", "/readyz", "/healthz"} {
		_, outputs[path] = httpDo(t, "GET", base+path, "")
	}
	status := exec.Command(hamalBin, "status", "--addr", ch.adminAddr)
	statusOut, _ := status.CombinedOutput()
	outputs["hamal status"] = string(statusOut)
	outputs["hamal check"] = string(checkOut)
	_ = run.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("hamal exited %d after SIGTERM", code)
	}
	outputs["log"] = p.out.String()
	if !strings.Contains(outputs["log"], "level=DEBUG") {
		t.Errorf("the log has no debug lines; the secret check would prove little")
	}
	// hamal check names a missing grant and the statement that fixes it.
	src.MustExec(t, "REVOKE DELETE ON hamal.* FROM 'hsrc'@'%'")
	cmd = exec.Command(hamalBin, "check", "--config", ch.path)
	cmd.Env = opsEnv()
	revoked, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 || !strings.Contains(string(revoked), "GRANT DELETE ON `hamal`.* TO") {
		t.Errorf("hamal check after REVOKE DELETE: exit %d, output:\n%s", code, revoked)
	}
	outputs["hamal check after revoke"] = string(revoked)

	for where, text := range outputs {
		for _, secret := range []string{opsSourcePassword, opsSinkPassword, opsAdminToken} {
			if strings.Contains(text, secret) {
				for _, line := range strings.Split(text, "\n") {
					if strings.Contains(line, secret) {
						t.Errorf("%s shows a secret: %s", where, line)
						break
					}
				}
			}
		}
	}
}
