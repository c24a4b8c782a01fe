package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
)

// TestPasswordNeverInClear puts a man in the middle on every MySQL link
// of hamal check, hamal run (the binlog dump and the sink),
// hamal migrate check and hamal failover-report: for the connections it
// picks, it answers in the server's name with an auth switch to
// mysql_clear_password, which go-mysql would follow. Each command must
// refuse, say why, and the man in the middle must never receive the
// password nor any answer to the switch.
func TestPasswordNeverInClear(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	const srcPW, dstPW = "src-Pw-9f3a1", "dst-Pw-7c1e2"
	var src, dst *harness.Server
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); src = harness.MariaDB(t, harness.Options{ServerID: 1}) }()
	go func() { defer wg.Done(); dst = harness.MariaDB(t, harness.Options{ServerID: 2}) }()
	wg.Wait()
	if src == nil || dst == nil {
		t.FailNow()
	}
	for _, s := range []*harness.Server{src, dst} {
		s.MustExec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
	}
	src.MustExec(t, "CREATE USER 'hsrc'@'%' IDENTIFIED BY '"+srcPW+"'",
		"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'hsrc'@'%'")
	dst.MustExec(t, "CREATE USER 'hdst'@'%' IDENTIFIED BY '"+dstPW+"'",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON app.* TO 'hdst'@'%'",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON hamal.* TO 'hdst'@'%'")

	all := func(harness.Login) bool { return true }
	binlogOnly := func(l harness.Login) bool { return l.Attrs["_client_role"] == "binary_log_listener" }
	dir := t.TempDir()
	config := func(name, srcAddr, dstAddr string) *channel {
		port, err := harness.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		c := &channel{dir: dir, path: filepath.Join(dir, name+".yaml"), adminAddr: fmt.Sprintf("127.0.0.1:%d", port), name: name}
		text := fmt.Sprintf(`name: %s
source: {kind: mysql, addr: %s, user: hsrc, password: %s, server_id: 4646, tables: ["app.*"]}
sink: {kind: mysql, addr: %s, user: hdst, password: %s}
checkpoint: {dir: %s, interval: 200ms}
admin: {listen: %s}
`, name, srcAddr, srcPW, dstAddr, dstPW, filepath.Join(dir, name+"-state"), c.adminAddr)
		if err := os.WriteFile(c.path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// checkMITM: the man in the middle attacked, got no answer, and saw no
	// password on the wire.
	checkMITM := func(t *testing.T, m *harness.MySQLMITM) {
		t.Helper()
		n, answers := m.Attacked()
		if n == 0 {
			t.Fatal("the man in the middle never got to attack a login")
		}
		for _, a := range answers {
			if len(a) > 0 {
				t.Errorf("a client answered the switch to mysql_clear_password: %q", a)
			}
		}
		wire := m.Wire()
		if bytes.Contains(wire, []byte(srcPW)) || bytes.Contains(wire, []byte(dstPW)) {
			t.Errorf("a password crossed the wire in clear")
		}
	}
	const refused = "Hamal refused and sent nothing of the password"

	t.Run("check", func(t *testing.T) {
		ms, md := harness.StartMySQLMITM(t, src.Addr, all), harness.StartMySQLMITM(t, dst.Addr, all)
		c := config("check", ms.Addr, md.Addr)
		out, code := hamalCmd(t, "check", "--config", c.path)
		if code != 1 || strings.Count(out, refused) < 2 || strings.Contains(out, "reachable") {
			t.Errorf("hamal check: exit %d, want 1 with both refusals and no 'reachable':\n%s", code, out)
		}
		checkMITM(t, ms)
		checkMITM(t, md)
	})
	t.Run("run binlog dump", func(t *testing.T) {
		ms := harness.StartMySQLMITM(t, src.Addr, binlogOnly)
		c := config("binlog", ms.Addr, dst.Addr)
		c.start(t)
		st := c.waitState(t, time.Minute, func(st pipeline.Status) bool { return st.State == pipeline.StateError })
		if !strings.Contains(st.LastError, "mysql_clear_password") {
			t.Errorf("last error %q does not name the refused plugin", st.LastError)
		}
		checkMITM(t, ms)
	})
	t.Run("run sink", func(t *testing.T) {
		md := harness.StartMySQLMITM(t, dst.Addr, all)
		c := config("sink", src.Addr, md.Addr)
		c.start(t)
		st := c.waitState(t, time.Minute, func(st pipeline.Status) bool { return st.State == pipeline.StateError })
		if !strings.Contains(st.LastError, "mysql_clear_password") {
			t.Errorf("last error %q does not name the refused plugin", st.LastError)
		}
		checkMITM(t, md)
	})
	t.Run("failover-report", func(t *testing.T) {
		// A checkpoint first, from the channel running without a man in
		// the middle; then the report, with one on the source's link.
		p := config("failover", src.Addr, dst.Addr).startRunning(t)
		src.MustExec(t, "INSERT INTO app.t VALUES (1, 'a')")
		waitTablesEqual(t, src, dst, map[string]string{"app.t": "id"}, time.Minute)
		p.kill(t)
		ms := harness.StartMySQLMITM(t, src.Addr, all)
		c := config("failover", ms.Addr, dst.Addr)
		out, code := hamalCmd(t, "failover-report", "--config", c.path)
		if code != 1 || !strings.Contains(out, refused) {
			t.Errorf("hamal failover-report: exit %d, want 1 with the refusal:\n%s", code, out)
		}
		checkMITM(t, ms)
	})
	t.Run("tls required", func(t *testing.T) {
		// tls on against servers that offer none: refused, never plain.
		certs := harness.TLSCerts(t, "required")
		c := config("required", src.Addr, dst.Addr)
		text, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		text = bytes.ReplaceAll(text, []byte("server_id: 4646,"), []byte("server_id: 4646, tls: {ca: "+certs.CA+"},"))
		text = bytes.ReplaceAll(text, []byte("password: "+dstPW+"}"), []byte("password: "+dstPW+", tls: {ca: "+certs.CA+"}}"))
		if err := os.WriteFile(c.path, text, 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := hamalCmd(t, "check", "--config", c.path)
		if code != 1 || strings.Count(out, "the server offers no TLS") != 2 || strings.Contains(out, "reachable") {
			t.Errorf("hamal check: exit %d, want 1 refusing both plain servers:\n%s", code, out)
		}
		c.start(t)
		st := c.waitState(t, time.Minute, func(st pipeline.Status) bool { return st.State == pipeline.StateError })
		if !strings.Contains(st.LastError, "offers no TLS") {
			t.Errorf("hamal run: last error %q", st.LastError)
		}
	})
	t.Run("migrate check", func(t *testing.T) {
		ms := harness.StartMySQLMITM(t, src.Addr, all)
		plan := filepath.Join(dir, "plan.yaml")
		text := fmt.Sprintf(`name: mitm
state_dir: %s
sources:
  - {addr: %s, user: hsrc, password: %s, server_id: 4647}
targets:
  - {addr: %s, user: hdst, password: %s}
tables:
  - {name: app.t, shard_key: id, rule: hash}
`, filepath.Join(dir, "plan-state"), ms.Addr, srcPW, dst.Addr, dstPW)
		if err := os.WriteFile(plan, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := hamalCmd(t, "migrate", "check", "--plan", plan)
		if code != 1 || !strings.Contains(out, refused) {
			t.Errorf("hamal migrate check: exit %d, want 1 with the refusal:\n%s", code, out)
		}
		checkMITM(t, ms)
	})
}
