package e2e

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/pipeline"
)

// TestStatusAfterIdleRestart stops hamal after it applied some writes and
// starts it again with nothing new on the source: /status, `hamal status`
// and the position gauges show the checkpoint at once, not "-" and zeros
// until the next write.
func TestStatusAfterIdleRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src, dst := startPair(t)
	src.MustExec(t, "CREATE TABLE app.idle (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
	dst.MustExec(t, "CREATE TABLE app.idle (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
	ch := newChannel(t, src, dst, channelOpts{name: "idle"})
	p := ch.startRunning(t)
	var stmts []string
	for i := 1; i <= 30; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO app.idle VALUES (%d, 'row %d')", i, i))
	}
	src.MustExec(t, stmts...)
	waitTablesEqual(t, src, dst, map[string]string{"app.idle": "id"}, time.Minute)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("hamal exited %d after SIGTERM", code)
	}
	store, err := checkpoint.Open(filepath.Join(ch.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	cp, ok, err := store.Load(ch.name)
	store.Close()
	if err != nil || !ok || cp.CommitTime.IsZero() {
		t.Fatalf("checkpoint after the first run: %+v %v %v", cp, ok, err)
	}

	ch.startRunning(t)
	st := ch.waitState(t, 30*time.Second, func(st pipeline.Status) bool { return st.SourceConnected })
	if st.AppliedTxns != 0 || st.InFlight != 0 {
		t.Fatalf("the restarted channel read something (%d applied, %d in flight); the test needs an idle source", st.AppliedTxns, st.InFlight)
	}
	if st.SourcePosition != cp.Pos.String() || st.CheckpointPosition != cp.Pos.String() {
		t.Errorf("/status after an idle restart: source_position %q, checkpoint_position %q; want both %s",
			st.SourcePosition, st.CheckpointPosition, cp.Pos)
	}
	out, err := exec.Command(hamalBin, "status", "--addr", ch.adminAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("hamal status: %v\n%s", err, out)
	}
	var line string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "source position:") {
			line = l
		}
	}
	if !strings.Contains(line, cp.Pos.String()) {
		t.Errorf("hamal status after an idle restart shows %q, want the checkpoint %s\n%s", line, cp.Pos, out)
	}
	m := scrape(t, ch.adminAddr)
	want := float64(cp.CommitTime.UnixNano()) / 1e9
	for _, name := range []string{"hamal_source_position_commit_timestamp_seconds", "hamal_checkpoint_commit_timestamp_seconds"} {
		if got, ok := m[name+`{channel="idle"}`]; !ok || math.Abs(got-want) > 1e-3 {
			t.Errorf("%s = %v (present %v), want the checkpoint's commit time %v", name, got, ok, want)
		}
	}
}
