package e2e

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

// TestBadSourceSettings: each bad source setting makes `hamal run` exit
// non-zero with a message naming the cause and the fix, and `hamal check`
// report it; no checkpoint is written.
func TestBadSourceSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	dst := harness.MariaDB(t, harness.Options{ServerID: 2})
	dst.MustExec(t, workload.Schema...)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"binlog_format STATEMENT", []string{"--binlog-format=STATEMENT"}, []string{"binlog_format", "ROW"}},
		{"binlog_row_image MINIMAL", []string{"--binlog-row-image=MINIMAL"}, []string{"binlog_row_image", "FULL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := harness.MariaDB(t, harness.Options{ServerID: 1, Args: tc.args})
			src.MustExec(t, workload.Schema...)
			ch := newChannel(t, src, dst, channelOpts{})
			out, code := hamalCmd(t, "check", "--config", ch.path)
			if code != 1 || !containsAll(out, tc.want) {
				t.Errorf("hamal check: exit %d, output:\n%s\nwant exit 1 and %q", code, out, tc.want)
			}
			p := ch.start(t, "--exit-on-error")
			code = p.wait(t, 60*time.Second)
			out = p.out.String()
			if code == 0 || !containsAll(out, tc.want) {
				t.Errorf("hamal run: exit %d, output:\n%s\nwant non-zero and %q", code, lastLines(out, 20), tc.want)
			}
			if pos, ok := ch.checkpointPos(t); ok {
				t.Errorf("checkpoint written despite the bad source: %q", pos)
			}
		})
	}
}

// TestBadConnectionAndConfig: wrong password, unreachable address and an
// unknown config key each fail with a message that names the key to fix.
func TestBadConnectionAndConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src, dst := startPair(t)
	free, _ := harness.FreePort()
	cases := []struct {
		name     string
		edit     func(string) string
		wantCode int // 0: any non-zero
		want     []string
	}{
		{"wrong password", func(s string) string {
			return strings.Replace(s, "user: root\n  password: \"\"\n  server_id", "user: root\n  password: \"wrong\"\n  server_id", 1)
		}, 0, []string{"ccess denied", "source.password"}},
		{"unknown config key", func(s string) string {
			return strings.Replace(s, "  server_id: 4242", "  server_id: 4242\n  passwrd: x", 1)
		}, 2, []string{"source.passwrd: unknown key", `did you mean "source.password"`}},
	}
	// An unreachable source is an outage, not a wrong setting: the channel
	// stays up retrying, and says which address it cannot reach.
	t.Run("unreachable address", func(t *testing.T) {
		ch := newChannel(t, src, dst, channelOpts{})
		b, _ := os.ReadFile(ch.path)
		if err := os.WriteFile(ch.path, []byte(strings.Replace(string(b), src.Addr, fmt.Sprintf("127.0.0.1:%d", free), 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		ch.start(t, "--exit-on-error")
		st := ch.waitState(t, 60*time.Second, func(st pipeline.Status) bool { return st.State == pipeline.StateRetrying && st.LastError != "" })
		if !containsAll(st.LastError, []string{fmt.Sprintf("127.0.0.1:%d", free), "source.addr"}) {
			t.Errorf("last error %q does not name the address and source.addr", st.LastError)
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch := newChannel(t, src, dst, channelOpts{})
			b, _ := os.ReadFile(ch.path)
			if err := os.WriteFile(ch.path, []byte(tc.edit(string(b))), 0o644); err != nil {
				t.Fatal(err)
			}
			p := ch.start(t, "--exit-on-error")
			code := p.wait(t, 60*time.Second)
			out := p.out.String()
			if code == 0 || (tc.wantCode != 0 && code != tc.wantCode) || !containsAll(out, tc.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit %d and %q", code, lastLines(out, 20), tc.wantCode, tc.want)
			}
		})
	}
}

// TestMissingTargetTableAndColumn: a table or a column missing on the
// target stops the channel in state "error" naming it; the checkpoint stays
// before the failed transaction; after the operator fixes the target and
// POSTs /resume, nothing was lost.
func TestMissingTargetTableAndColumn(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	cases := []struct {
		name    string
		breakT  string // statement run on the target to break it
		fixT    string // statement that repairs it
		want    []string
		failing int64 // which of the three source transactions fails (1-based)
	}{
		{"missing table", "DROP TABLE app.orders", workload.Schema[1], []string{"app.orders", "does not exist"}, 1},
		{"missing column", "ALTER TABLE app.users DROP COLUMN name", "ALTER TABLE app.users ADD COLUMN name VARCHAR(100) CHARACTER SET utf8mb4 AFTER email", []string{"app.users", "name"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := startPair(t)
			dst.MustExec(t, tc.breakT)
			ch := newChannel(t, src, dst, channelOpts{})
			p := ch.startRunning(t)
			ch.waitState(t, 10*time.Second, func(st pipeline.Status) bool { return st.CheckpointPosition != "" })
			before, err := src.GTIDPos()
			if err != nil {
				t.Fatal(err)
			}
			failingSeq := gtidSeq(t, before) + tc.failing

			src.MustExec(t,
				"INSERT INTO app.orders VALUES (1, 1, 1, 9.99, 'first')",
				"INSERT INTO app.users (id, email, name) VALUES (1, 'a@x', 'Ann')",
				"INSERT INTO app.types (id, i) VALUES (1, 5)")
			st := ch.waitState(t, 30*time.Second, func(st pipeline.Status) bool { return st.State == pipeline.StateError })
			if !containsAll(st.LastError, tc.want) {
				t.Errorf("last_error %q, want it to name %q", st.LastError, tc.want)
			}
			// Readiness reports the error too.
			if resp, err := http.Get("http://" + ch.adminAddr + "/readyz"); err != nil {
				t.Error(err)
			} else if resp.Body.Close(); resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/readyz in state error = %d, want 503", resp.StatusCode)
			}
			// Restart: the checkpoint did not move past what was applied.
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.wait(t, 30*time.Second); code != 0 {
				t.Errorf("SIGTERM in state error: exit %d", code)
			}
			pos, _ := ch.checkpointPos(t)
			if m := checkpointGTID.FindStringSubmatch(pos); m == nil || gtidSeq(t, m[1]) >= failingSeq {
				t.Errorf("checkpoint %q reaches the failed transaction 1-1-%d", pos, failingSeq)
			}
			p = ch.start(t)
			ch.waitState(t, 30*time.Second, func(st pipeline.Status) bool { return st.State == pipeline.StateError })

			dst.MustExec(t, tc.fixT)
			resp, err := http.Post("http://"+ch.adminAddr+"/resume", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			waitTablesEqual(t, src, dst, workload.Tables, time.Minute)
			ch.waitState(t, 10*time.Second, func(st pipeline.Status) bool { return st.State == pipeline.StateRunning })
		})
	}
}

// TestPurgedPosition: when the source has purged the binlog the checkpoint
// needs, hamal fails naming the purge and the fix, and leaves the
// checkpoint alone (never a silent jump to "current").
func TestPurgedPosition(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src, dst := startPair(t)
	ch := newChannel(t, src, dst, channelOpts{})
	p := ch.startRunning(t)
	src.MustExec(t, "INSERT INTO app.users (id, email) VALUES (1, 'a@x')")
	waitTablesEqual(t, src, dst, map[string]string{"app.users": "id"}, 30*time.Second)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t, 30*time.Second)
	before, ok := ch.checkpointPos(t)
	if !ok {
		t.Fatal("no checkpoint after a clean stop")
	}

	src.MustExec(t, "INSERT INTO app.users (id, email) VALUES (2, 'b@x')", "FLUSH BINARY LOGS",
		"INSERT INTO app.users (id, email) VALUES (3, 'c@x')", "FLUSH BINARY LOGS")
	logs := src.MustQuery(t, "SHOW BINARY LOGS")
	src.MustExec(t, fmt.Sprintf("PURGE BINARY LOGS TO '%s'", logs[len(logs)-1][0]))

	p = ch.start(t, "--exit-on-error")
	code := p.wait(t, 60*time.Second)
	out := p.out.String()
	if code == 0 || !containsAll(out, []string{"purged"}) {
		t.Errorf("exit %d, output:\n%s\nwant non-zero and a message about the purged binlog", code, lastLines(out, 20))
	}
	if after, _ := ch.checkpointPos(t); after != before {
		t.Errorf("checkpoint moved from %q to %q", before, after)
	}
	if n := dst.MustQuery(t, "SELECT COUNT(*) FROM app.users")[0][0]; n != "1" {
		t.Errorf("target has %s users, want 1 (nothing applied past the purge)", n)
	}
}

var checkpointGTID = regexp.MustCompile(`"gtid":"(1-1-[0-9]+)"`)

// gtidSeq returns the sequence number of a single-domain MariaDB GTID
// position "1-1-N".
func gtidSeq(t *testing.T, gtid string) int64 {
	t.Helper()
	parts := strings.Split(gtid, "-")
	n, err := strconv.ParseInt(parts[len(parts)-1], 10, 64)
	if len(parts) != 3 || err != nil {
		t.Fatalf("unexpected GTID position %q", gtid)
	}
	return n
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
