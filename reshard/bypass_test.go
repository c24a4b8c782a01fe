package reshard

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"

	enginemysql "github.com/hamal-replication/hamal/engine/mysql"
	"github.com/hamal-replication/hamal/test/harness"
)

// TestReadOnlyBypass on a real MariaDB 10.11: an account with ALL ON *.*
// writes through read_only=1; the cut-over's refuse names it (and SUPER
// holders) with the REVOKE that fixes it, skipping locked accounts, the
// plan's own user and bypass_allow; fence ends its sessions and locks it
// until the sources are unfenced.
func TestReadOnlyBypass(t *testing.T) {
	srv := harness.MariaDB(t, harness.Options{ServerID: 54})
	srv.MustExec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)",
		"CREATE USER mig@'%' IDENTIFIED BY 'pw'",
		"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, READ_ONLY ADMIN, CREATE USER, CONNECTION ADMIN, PROCESS ON *.* TO mig@'%'",
		"CREATE USER app@'%' IDENTIFIED BY 'pw'", "GRANT ALL ON *.* TO app@'%'",
		"CREATE USER dba@'%' IDENTIFIED BY 'pw'", "GRANT SUPER ON *.* TO dba@'%'",
		"CREATE USER gone@'%' IDENTIFIED BY 'pw' ACCOUNT LOCK", "GRANT ALL ON *.* TO gone@'%'")
	appConn := func() (*client.Conn, error) { return client.Connect(srv.Addr, "app", "pw", "app") }
	ctx := context.Background()
	p := &Plan{Sources: []Server{{Conn: enginemysql.Conn{Addr: srv.Addr, User: "mig", Password: "pw"}}},
		Cutover: Cutover{Fence: "read_only", ReadOnlyBypass: BypassRefuse, BypassAllow: []string{"root"}}}
	m := &Migration{plan: p, log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	// The danger: ALL ON *.* writes through read_only.
	session, err := appConn()
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	srv.MustExec(t, "SET GLOBAL read_only=1")
	if _, err := session.Execute("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatalf("an ALL ON *.* account did not write through read_only (the premise): %v", err)
	}
	srv.MustExec(t, "SET GLOBAL read_only=0")

	_, err = m.fenceBypass(ctx)
	if err == nil {
		t.Fatal("refuse: the cut-over went ahead with accounts that write through read_only")
	}
	msg := err.Error()
	for _, want := range []string{"'app'@'%' (READ_ONLY ADMIN, SUPER)", "'dba'@'%' (SUPER)",
		"REVOKE READ_ONLY ADMIN, SUPER ON *.* FROM 'app'@'%';", "cutover.read_only_bypass: fence"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal lacks %q: %s", want, msg)
		}
	}
	for _, not := range []string{"'gone'", "'mig'", "'root'"} {
		if strings.Contains(msg, not) {
			t.Errorf("refusal names %s (locked, own or allowed): %s", not, msg)
		}
	}

	p.Cutover.ReadOnlyBypass = BypassFence
	locked, err := m.fenceBypass(ctx)
	if err != nil {
		t.Fatalf("fence: %v", err)
	}
	if got := strings.Join(locked[0], " "); got != "'app'@'%' 'dba'@'%'" {
		t.Fatalf("fence locked %q", got)
	}
	if _, err := session.Execute("INSERT INTO t VALUES (2)"); err == nil {
		t.Fatal("the fenced account's open session still writes")
	}
	if c, err := appConn(); err == nil {
		c.Close()
		t.Fatal("the fenced account can still log in")
	} else if !strings.Contains(err.Error(), "locked") {
		t.Fatalf("log-in of the fenced account: %v, want account locked", err)
	}
	if err := m.unfenceBypass(ctx, locked); err != nil {
		t.Fatal(err)
	}
	c, err := appConn()
	if err != nil {
		t.Fatalf("unfenced account cannot log in: %v", err)
	}
	defer c.Close()
	if _, err := c.Execute("INSERT INTO t VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	if n := srv.MustQuery(t, "SELECT COUNT(*) FROM app.t")[0][0]; n != "2" {
		t.Fatalf("app.t holds %s rows, want 2 (1 and 3)", n)
	}
}
