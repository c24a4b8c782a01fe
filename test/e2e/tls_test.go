package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

// TestTLSToSourceAndTarget replicates over TLS to both servers, with
// accounts that REQUIRE SSL and the server certificates verified against
// the configured CA; with another CA, hamal check refuses the servers.
// After the channel stops, hamal failover-report reaches both servers over
// TLS too and lists the rows written meanwhile.
func TestTLSToSourceAndTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	dir := t.TempDir()
	good, other := harness.TLSCerts(t, "good"), harness.TLSCerts(t, "other")
	ca, otherCA := good.CA, other.CA
	sslArgs := good.MariaDBArgs()
	var src, dst *harness.Server
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); src = harness.MariaDB(t, harness.Options{ServerID: 1, Args: sslArgs}) }()
	go func() { defer wg.Done(); dst = harness.MariaDB(t, harness.Options{ServerID: 2, Args: sslArgs}) }()
	wg.Wait()
	if src == nil || dst == nil {
		t.FailNow()
	}
	src.MustExec(t, workload.Schema...)
	dst.MustExec(t, workload.Schema...)
	src.MustExec(t, "CREATE TABLE app.tls (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE USER 'tsrc'@'%' IDENTIFIED BY 'pw-src' REQUIRE SSL",
		"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'tsrc'@'%'")
	dst.MustExec(t, "CREATE TABLE app.tls (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE USER 'tdst'@'%' IDENTIFIED BY 'pw-dst' REQUIRE SSL",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON app.* TO 'tdst'@'%'",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON hamal.* TO 'tdst'@'%'")

	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	writeConfig := func(path, caFile string) *channel {
		c := &channel{dir: dir, path: path, adminAddr: fmt.Sprintf("127.0.0.1:%d", port), name: "tls"}
		text := fmt.Sprintf(`name: tls
source: {kind: mysql, addr: %s, user: tsrc, password: pw-src, server_id: 4545, tables: ["app.tls"], tls: {ca: %s}}
sink: {kind: mysql, addr: %s, user: tdst, password: pw-dst, tls: {ca: %s}}
checkpoint: {dir: %s, interval: 200ms}
admin: {listen: %s}
`, src.Addr, caFile, dst.Addr, caFile, filepath.Join(dir, "state"), c.adminAddr)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return c
	}

	bad := writeConfig(filepath.Join(dir, "bad.yaml"), otherCA)
	out, code := hamalCmd(t, "check", "--config", bad.path)
	if code != 1 || !strings.Contains(out, "certificate is not signed by a CA Hamal trusts") || !strings.Contains(out, "set source.tls.ca") ||
		!strings.Contains(out, "set sink.tls.ca") || strings.Contains(out, "reachable") {
		t.Errorf("hamal check with the wrong CA: exit %d, want 1 naming the certificate and the keys; output:\n%s", code, out)
	}
	// hamal run stops in state error at once, naming the cause, instead of
	// retrying an outage that is none.
	badRun := bad.start(t)
	st := bad.waitState(t, time.Minute, func(st pipeline.Status) bool { return st.State == pipeline.StateError })
	if !strings.Contains(st.LastError, "not signed by a CA Hamal trusts") {
		t.Errorf("hamal run with the wrong CA: last error %q", st.LastError)
	}
	badRun.kill(t)

	ch := writeConfig(filepath.Join(dir, "good.yaml"), ca)
	if out, code := hamalCmd(t, "check", "--config", ch.path); code != 0 {
		t.Fatalf("hamal check over TLS: exit %d\n%s", code, out)
	}
	p := ch.startRunning(t)
	var stmts []string
	for i := 1; i <= 50; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO app.tls VALUES (%d, 'row %d')", i, i))
	}
	stmts = append(stmts, "UPDATE app.tls SET v = 'changed' WHERE id <= 10", "DELETE FROM app.tls WHERE id > 45")
	src.MustExec(t, stmts...)
	waitTablesEqual(t, src, dst, map[string]string{"app.tls": "id"}, time.Minute)
	// Both accounts REQUIRE SSL: each session of theirs is encrypted, and
	// the channel holds sessions on both servers.
	for _, s := range []struct {
		srv  *harness.Server
		user string
	}{{src, "tsrc"}, {dst, "tdst"}} {
		rows := s.srv.MustQuery(t, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '"+s.user+"'")
		if rows[0][0] == "0" {
			t.Errorf("no session of %s on its server", s.user)
		}
	}
	p.kill(t)

	// The failover report reads both servers through the same driver:
	// over TLS, as the accounts require. Rows written while the channel is
	// down are what it must list.
	src.MustExec(t, "INSERT INTO app.tls VALUES (101, 'lost 1'), (102, 'lost 2')", "UPDATE app.tls SET v = 'lost 3' WHERE id = 1")
	out, code = hamalCmd(t, "failover-report", "--config", ch.path, "--json")
	if code != 0 {
		t.Fatalf("hamal failover-report over TLS: exit %d\n%s", code, out)
	}
	var rep struct {
		Tables []struct {
			Table string `json:"table"`
			Rows  []struct {
				Key   string `json:"key"`
				State string `json:"state"`
			} `json:"rows"`
		} `json:"tables"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("failover-report --json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, tb := range rep.Tables {
		for _, r := range tb.Rows {
			got[tb.Table+" "+r.Key] = r.State
		}
	}
	want := map[string]string{"app.tls id=101": "missing", "app.tls id=102": "missing", "app.tls id=1": "differs"}
	if len(got) != len(want) {
		t.Errorf("failover report rows %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("failover report: %s is %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}
