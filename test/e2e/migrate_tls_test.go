package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/reshard"
	"github.com/hamal-replication/hamal/test/harness"
)

// overSocket is s reached through its Unix socket, which
// require_secure_transport still admits in clear: the test's own reads and
// writes once TCP takes TLS only.
func overSocket(s *harness.Server) *harness.Server {
	return &harness.Server{Addr: filepath.Join(s.DataDir, "sock")}
}

// TestMigrateOverTLS: a split whose source and targets refuse any TCP
// connection without TLS (require_secure_transport=ON, certificates made
// by openssl). The plan without tls, and with another CA, is refused by
// hamal migrate check (MariaDB refuses the plain login; the other CA does
// not verify the server); with tls: {ca: ...} on every server the preflight,
// the copy, the catch-up, verify, the fence and the reverse replication
// after the cut-over all work, and the data arrives both ways.
func TestMigrateOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	dir := t.TempDir()
	good, other := harness.TLSCerts(t, "good"), harness.TLSCerts(t, "other")
	ca, cert, key, otherCA := good.CA, good.Server, good.ServerKey, other.CA
	sslArgs := []string{"--ssl-ca=" + ca, "--ssl-cert=" + cert, "--ssl-key=" + key}
	servers := make([]*harness.Server, 3)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i] = harness.MariaDB(t, harness.Options{ServerID: 61 + i, Args: sslArgs})
		}()
	}
	wg.Wait()
	for _, s := range servers {
		if s == nil {
			t.FailNow()
		}
	}
	seedUsers(t, servers[0], 1, 3000)
	for _, s := range servers {
		s.MustExec(t, "SET GLOBAL require_secure_transport=ON")
	}
	// From here on the test reaches the servers through their sockets:
	// only the socket is plain.
	src := overSocket(servers[0])
	targets := []*harness.Server{overSocket(servers[1]), overSocket(servers[2])}
	if _, err := (&harness.Server{Addr: servers[0].Addr}).Query("SELECT 1"); err == nil {
		t.Fatal("a plain TCP connection still works: the servers do not enforce TLS")
	}

	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	writeTLSPlan := func(name, tls string) *migration {
		var b strings.Builder
		fmt.Fprintf(&b, "name: %s\nstate_dir: %s\nadmin: {listen: 127.0.0.1:%d}\n", name, filepath.Join(dir, name+"-state"), port)
		fmt.Fprintf(&b, "sources:\n  - {addr: %s, user: root, server_id: 4301%s}\ntargets:\n", servers[0].Addr, tls)
		for i, s := range servers[1:] {
			fmt.Fprintf(&b, "  - {addr: %s, user: root, server_id: %d%s}\n", s.Addr, 4401+i, tls)
		}
		b.WriteString("tables:\n  - {name: app.users, shard_key: id, rule: hash}\n" +
			"copy: {chunk_rows: 500}\nverify: {chunk_rows: 1000, recheck_delay: 500ms}\ncutover: {timeout: 60s}\n")
		m := &migration{path: filepath.Join(dir, name+".yaml"), admin: fmt.Sprintf("127.0.0.1:%d", port)}
		if err := os.WriteFile(m.path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return m
	}

	// MariaDB answers a plain TCP login under require_secure_transport
	// with ERROR 1045 (access denied); the same account over TLS passes.
	for _, c := range []struct{ name, tls, want string }{
		{"plain", "", "access denied for user 'root'@'127.0.0.1'"},
		{"wrong-ca", ", tls: {ca: " + otherCA + "}", "certificate"},
	} {
		m := writeTLSPlan(c.name, c.tls)
		out, code := hamalCmd(t, "migrate", "check", "--plan", m.path)
		if code != 1 || !strings.Contains(strings.ToLower(out), c.want) {
			t.Errorf("migrate check, plan %s: exit %d, want 1 and %q; output:\n%s", c.name, code, c.want, out)
		}
	}

	m := writeTLSPlan("tls", ", tls: {ca: "+ca+"}")
	if out, code := hamalCmd(t, "migrate", "check", "--plan", m.path); code != 0 {
		t.Fatalf("migrate check over TLS: exit %d\n%s", code, out)
	}
	p := m.start(t)
	m.waitStatus(t, p, 120*time.Second, "catch-up running", func(st reshard.Status) bool {
		return st.Phase == reshard.PhaseCatchup && len(st.Channels) == 1 && st.Channels[0].State == "running"
	})
	// Changes during the catch-up travel the binlog stream and the sinks.
	src.MustExec(t, "UPDATE app.users SET c = 'caught-up' WHERE id % 10 = 0", "DELETE FROM app.users WHERE id % 37 = 0",
		"INSERT INTO app.users (id, k, c, pad) SELECT seq, 1, 'new', 'p' FROM app.seq_5001_to_5200")
	before := time.Now().UTC()
	// A verify requested while the automatic one runs is refused: ask
	// until one starts. It compares once the catch-up reached the source.
	if err := harness.WaitFor(t.Context(), 120*time.Second, func() (bool, error) {
		_, code := hamalCmd(t, "migrate", "verify", "--no-wait", "--plan", m.path)
		return code == 0, nil
	}); err != nil {
		t.Fatalf("migrate verify was never accepted: %v", err)
	}
	st := m.waitStatus(t, p, 180*time.Second, "verify after the changes", func(st reshard.Status) bool {
		return !st.Verifying && st.Verify != nil && st.Verify.StartedAt.After(before)
	})
	want, _ := strconv.ParseInt(src.MustQuery(t, "SELECT COUNT(*) FROM app.users")[0][0], 10, 64)
	if v := st.Verify; v.Mismatches != 0 || v.WrongShard != 0 || len(v.Tables) != 1 || v.Tables[0].Rows != want {
		t.Fatalf("verify over TLS: %+v; want no mismatch over the source's %d rows", v, want)
	}
	assertUnion(t, []*harness.Server{src}, "app.users", targets, "app.users", crcShard(2))

	// The fence and the reverse replication: a row written on a target
	// after the cut-over reaches the source.
	if out, code := hamalCmd(t, "migrate", "cutover", "--plan", m.path); code != 0 {
		t.Fatalf("migrate cutover: exit %d: %s", code, out)
	}
	if ro := src.MustQuery(t, "SELECT @@read_only")[0][0]; ro != "1" {
		t.Fatalf("source read_only = %s after the cut-over; want 1", ro)
	}
	m.waitStatus(t, p, 60*time.Second, "reverse replication", func(st reshard.Status) bool {
		return st.Cutover.Step == reshard.StepSwitched && len(st.Channels) == 2
	})
	var ids []string
	for i := 0; i < 20; i++ {
		id := strconv.Itoa(900000 + i)
		ids = append(ids, id)
		targets[crcShard(2)(id)].MustExec(t, "INSERT INTO app.users (id, k, c, pad) VALUES ("+id+", 2, 'after-cutover', 'x')")
	}
	err = harness.WaitFor(t.Context(), 60*time.Second, func() (bool, error) {
		rows, err := src.Query("SELECT COUNT(*) FROM app.users WHERE c = 'after-cutover' AND id IN (" + strings.Join(ids, ",") + ")")
		return err == nil && rows[0][0] == "20", err
	})
	if err != nil {
		t.Fatalf("rows written on the targets after the cut-over did not reach the source: %v", err)
	}
	if out, code := hamalCmd(t, "migrate", "complete", "--plan", m.path); code != 0 {
		t.Fatalf("migrate complete: exit %d: %s", code, out)
	}
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("hamal migrate exited %d after complete", code)
	}
	assertUnion(t, []*harness.Server{src}, "app.users", targets, "app.users", crcShard(2))
}
