package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
)

var hamalBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hamal-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hamalBin, err = harness.HamalBinary("../..", dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// channel is one hamal config on disk plus its admin address.
type channel struct {
	dir       string
	path      string
	adminAddr string
	name      string
	// token is admin.token when the config sets one: status and post
	// send it (error texts then come in full).
	token string
}

type channelOpts struct {
	name    string
	start   string
	tables  string // YAML flow list
	extra   string // appended verbatim under source:
	workers int
	// srcSite and sinkSite turn on the loop guard.
	srcSite, sinkSite string
	sinkExtra         string // appended verbatim under sink:
	serverID          int    // replica server_id; default 4242
}

func newChannel(t *testing.T, src, dst *harness.Server, o channelOpts) *channel {
	t.Helper()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if o.name == "" {
		o.name = "e2e"
	}
	if o.start == "" {
		o.start = "current"
	}
	if o.tables == "" {
		o.tables = `["app.*"]`
	}
	if o.workers == 0 {
		o.workers = 8
	}
	if o.serverID == 0 {
		o.serverID = 4242
	}
	if o.srcSite != "" {
		o.extra += "  site: " + o.srcSite + "\n"
	}
	sinkExtra := o.sinkExtra
	if o.sinkSite != "" {
		sinkExtra += "  site: " + o.sinkSite + "\n"
	}
	dir := t.TempDir()
	c := &channel{dir: dir, path: filepath.Join(dir, "hamal.yaml"), adminAddr: fmt.Sprintf("127.0.0.1:%d", port), name: o.name}
	text := fmt.Sprintf(`name: %s
source:
  kind: mysql
  addr: %s
  user: root
  password: ""
  server_id: %d
  start: %q
  tables: %s
%ssink:
  kind: mysql
  addr: %s
  user: root
  password: ""
%sapply:
  workers: %d
  batch_txns: 64
checkpoint:
  dir: %s
  interval: 200ms
admin:
  listen: %s
log:
  level: debug
`, o.name, src.Addr, o.serverID, o.start, o.tables, o.extra, dst.Addr, sinkExtra, o.workers, filepath.Join(dir, "state"), c.adminAddr)
	if err := os.WriteFile(c.path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// proc is a running hamal process.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (c *channel) start(t *testing.T, args ...string) *proc {
	t.Helper()
	return spawnHamal(t, "hamal", append([]string{"run", "--config", c.path}, args...)...)
}

// spawnHamal starts the hamal binary with args; the test's cleanup kills it
// if it still runs and, when the test failed, logs its last output lines
// under label.
func spawnHamal(t *testing.T, label string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(hamalBin, args...)
	p := &proc{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	waited, err := harness.Spawn(cmd)
	if err != nil {
		t.Fatal(err)
	}
	go func() { p.err = <-waited; close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", label, lastLines(p.out.String(), 60))
		}
	})
	return p
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startRunning starts hamal and waits until the channel is running.
func (c *channel) startRunning(t *testing.T) *proc {
	t.Helper()
	p := c.start(t)
	c.waitState(t, 30*time.Second, func(st pipeline.Status) bool { return st.State == pipeline.StateRunning })
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("hamal did not exit within %s; output:\n%s", timeout, lastLines(p.out.String(), 40))
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

func (c *channel) status() (pipeline.Status, error) {
	var st pipeline.Status
	client := &http.Client{Timeout: 2 * time.Second}
	req, err := http.NewRequest(http.MethodGet, "http://"+c.adminAddr+"/status", nil)
	if err != nil {
		return st, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return st, json.Unmarshal(b, &st)
}

// waitState polls /status until pred holds.
func (c *channel) waitState(t *testing.T, timeout time.Duration, pred func(pipeline.Status) bool) pipeline.Status {
	t.Helper()
	var last pipeline.Status
	var lastErr error
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st, err := c.status()
		if err == nil && pred(st) {
			return st
		}
		last, lastErr = st, err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("status condition not met within %s: last %+v (err %v)", timeout, last, lastErr)
	return last
}

// checkpointPos reads the channel's persisted checkpoint (hamal must not
// be running: Pebble locks its directory).
func (c *channel) checkpointPos(t *testing.T) (string, bool) {
	t.Helper()
	store, err := checkpoint.Open(filepath.Join(c.dir, "state"))
	if err != nil {
		t.Fatalf("open checkpoint store: %v", err)
	}
	defer store.Close()
	cp, ok, err := store.Load(c.name)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Pos.String(), ok
}

// hamalCmd runs a hamal subcommand to completion.
func hamalCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(hamalBin, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// assertTablesEqual compares every named table of src and dst by
// server-side checksum over all columns in key order.
func assertTablesEqual(t *testing.T, src, dst *harness.Server, tables map[string]string) {
	t.Helper()
	for table, orderBy := range tables {
		want, wantN, err := src.TableChecksum(table, orderBy)
		if err != nil {
			t.Fatalf("source %s: %v", table, err)
		}
		got, gotN, err := dst.TableChecksum(table, orderBy)
		if err != nil {
			t.Fatalf("target %s: %v", table, err)
		}
		if want != got || wantN != gotN {
			t.Errorf("table %s differs: source %d rows %s, target %d rows %s", table, wantN, want, gotN, got)
		} else {
			t.Logf("table %s equal: %d rows, checksum %s", table, gotN, got)
		}
	}
}

// waitTablesEqual waits until every table matches (replication caught up).
func waitTablesEqual(t *testing.T, src, dst *harness.Server, tables map[string]string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		equal := true
		for table, orderBy := range tables {
			a, an, err1 := src.TableChecksum(table, orderBy)
			b, bn, err2 := dst.TableChecksum(table, orderBy)
			if err1 != nil || err2 != nil || a != b || an != bn {
				equal = false
				break
			}
		}
		if equal {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	assertTablesEqual(t, src, dst, tables)
}
