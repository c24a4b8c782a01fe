package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

// TestCheckRefusesBadStart: hamal check fails each source.start the source
// cannot serve (a GTID ahead of it, a purged one, one in a GTID domain it
// lacks, a file:pos beyond the end of its binlog), naming the cause and a
// fix that is a fix, and then does not claim the channel "starts at" that
// value; hamal run refuses the same value with the same cause, logs no
// kill-connection error and writes no checkpoint. A good start passes.
func TestCheckRefusesBadStart(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src, dst := startPair(t)
	src.MustExec(t, "INSERT INTO app.users (id, email) VALUES (1, 'a@x')")
	purged, err := src.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	src.MustExec(t, "INSERT INTO app.users (id, email) VALUES (2, 'b@x')", "FLUSH BINARY LOGS",
		"INSERT INTO app.users (id, email) VALUES (3, 'c@x')", "FLUSH BINARY LOGS")
	logs := src.MustQuery(t, "SHOW BINARY LOGS")
	last := logs[len(logs)-1][0]
	// MariaDB keeps a binlog its crash recovery may still need: purge
	// until the file holding the purged position is gone.
	if err := harness.WaitFor(t.Context(), time.Minute, func() (bool, error) {
		if err := src.Exec(fmt.Sprintf("PURGE BINARY LOGS TO '%s'", last)); err != nil {
			return false, err
		}
		rows, err := src.Query("SHOW BINARY LOGS")
		return err == nil && rows[0][0] != logs[0][0], err
	}); err != nil {
		t.Fatalf("purge: %v", err)
	}
	cur, err := src.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	logs = src.MustQuery(t, "SHOW BINARY LOGS")
	newest := logs[len(logs)-1]
	seq := gtidSeq(t, cur)

	cases := []struct {
		name, start string
		want        []string // in the FAIL line and its fix, and in run's error
	}{
		{"gtid ahead", fmt.Sprintf("1-1-%d", seq+50), []string{"is ahead of the source", "newest transaction in domain 1 is " + cur,
			"take the position from this source"}},
		{"gtid purged", purged, []string{"the source purged them", "its oldest binlog", "set source.start to snapshot"}},
		{"gtid unknown domain", fmt.Sprintf("7-7-%d", seq), []string{"GTID domain 7, which the source does not have", "domain 1 at " + cur}},
		{"file:pos beyond the end", newest[0] + ":987654321", []string{"beyond the end of " + newest[0], "it ends at " + newest[0] + ":"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A server_id each: a run that got further than it should
			// would otherwise stay registered and fail the next case.
			ch := newChannel(t, src, dst, channelOpts{start: tc.start, serverID: 4300 + i})
			out, code := hamalCmd(t, "check", "--config", ch.path)
			if code != 1 || !containsAll(out, tc.want) || !strings.Contains(out, "FAIL  source: source.start") {
				t.Errorf("hamal check: exit %d, output:\n%s\nwant exit 1, a FAIL of source.start and %q", code, out, tc.want)
			}
			if strings.Contains(out, "starts at source.start=") {
				t.Errorf("hamal check says the channel starts at the value it refused:\n%s", out)
			}
			if !strings.Contains(out, "checkpoint: none yet, and source.start="+tc.start+" is refused above") {
				t.Errorf("hamal check does not say the refused start is why the channel cannot start:\n%s", out)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "fix:") && strings.Contains(line, "restart") {
					t.Errorf("a fix that is not one: %q", line)
				}
			}
			p := ch.start(t, "--exit-on-error")
			code = p.wait(t, 60*time.Second)
			run := p.out.String()
			if code == 0 || !containsAll(run, tc.want) {
				t.Errorf("hamal run: exit %d, output:\n%s\nwant non-zero and %q", code, lastLines(run, 20), tc.want)
			}
			if strings.Contains(run, "kill connection") {
				t.Errorf("hamal run logged a kill-connection error:\n%s", lastLines(run, 20))
			}
			if pos, ok := ch.checkpointPos(t); ok {
				t.Errorf("checkpoint written at a refused start: %q", pos)
			}
		})
	}
	t.Run("good start", func(t *testing.T) {
		ch := newChannel(t, src, dst, channelOpts{start: cur})
		out, code := hamalCmd(t, "check", "--config", ch.path)
		if code != 0 || !strings.Contains(out, "ok    checkpoint: none yet; starts at source.start="+cur) {
			t.Errorf("hamal check: exit %d, output:\n%s\nwant all checks passed at source.start=%s", code, out, cur)
		}
	})
}

// TestCheckSnapshot: with source.start: snapshot, hamal check reports what
// the snapshot would refuse on the target (a table with another
// definition, naming both; a table with rows) and otherwise what it would
// create, instead of requiring the tables to exist.
func TestCheckSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src := harness.MariaDB(t, harness.Options{ServerID: 1})
	dst := harness.MariaDB(t, harness.Options{ServerID: 2})
	src.MustExec(t, workload.Schema...)
	ch := newChannel(t, src, dst, channelOpts{start: "snapshot"})
	out, code := hamalCmd(t, "check", "--config", ch.path)
	if code != 0 || !strings.Contains(out, "ok    snapshot: 3 tables to copy; creates 3 missing on the target (app.orders, app.types, app.users)") ||
		!strings.Contains(out, "starts at source.start=snapshot") {
		t.Errorf("empty target: exit %d, output:\n%s\nwant the snapshot to create 3 tables", code, out)
	}
	dst.MustExec(t, workload.Schema[0], workload.Schema[1],
		strings.Replace(workload.Schema[2], "name VARCHAR(100) CHARACTER SET utf8mb4", "name VARCHAR(100) CHARACTER SET latin1", 1),
		"INSERT INTO app.orders VALUES (1, 1, 1, 1, 'stale')")
	out, code = hamalCmd(t, "check", "--config", ch.path)
	want := []string{"FAIL  snapshot: target table app.users differs from the source's", "CHARACTER SET utf8mb4", "CHARACTER SET latin1",
		"source: CREATE TABLE `users`", "target: CREATE TABLE `users`", "drop it so the snapshot creates it",
		"FAIL  snapshot: target table app.orders is not empty", "TRUNCATE TABLE `app`.`orders`"}
	if code != 1 || !containsAll(out, want) {
		t.Errorf("refused target: exit %d, output:\n%s\nwant %q", code, out, want)
	}
}
