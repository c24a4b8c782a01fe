package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
)

// Config is what the suite varies in a channel's config file.
type Config struct {
	Name          string
	SourceAddr    string // usually a Link's address
	SinkAddr      string
	CheckpointDir string
	AdminAddr     string
	Workers       int
}

// Write renders the config as YAML into path.
func (c Config) Write(path string) error {
	if c.Workers == 0 {
		c.Workers = 8
	}
	text := fmt.Sprintf(`name: %s
source:
  kind: mysql
  addr: %s
  user: root
  password: ""
  server_id: 4242
  start: current
  tables: ["app.*"]
sink:
  kind: mysql
  addr: %s
  user: root
  password: ""
apply:
  workers: %d
  batch_txns: 64
checkpoint:
  dir: %s
  interval: 200ms
admin:
  listen: %s
log:
  level: info
`, c.Name, c.SourceAddr, c.SinkAddr, c.Workers, c.CheckpointDir, c.AdminAddr)
	return os.WriteFile(path, []byte(text), 0o644)
}

// Hamal is one running hamal process.
type Hamal struct {
	AdminAddr string
	cmd       *exec.Cmd
	out       *syncBuffer
	exited    chan struct{}
	err       error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Keep the last few MB: a soak logs for hours.
	if s.b.Len() > 4<<20 {
		keep := s.b.Bytes()[s.b.Len()-(2<<20):]
		s.b = *bytes.NewBuffer(append([]byte(nil), keep...))
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartHamal runs `hamal run --config path` with extra flags.
func StartHamal(bin, path, adminAddr string, args ...string) (*Hamal, error) {
	cmd := exec.Command(bin, append([]string{"run", "--config", path}, args...)...)
	h := &Hamal{AdminAddr: adminAddr, cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = h.out, h.out
	waited, err := harness.Spawn(cmd)
	if err != nil {
		return nil, fmt.Errorf("start hamal: %w", err)
	}
	go func() { h.err = <-waited; close(h.exited) }()
	return h, nil
}

// Pid is the process id.
func (h *Hamal) Pid() int { return h.cmd.Process.Pid }

// Output is what the process logged (the last few MB).
func (h *Hamal) Output() string { return h.out.String() }

// Exited reports whether the process has ended.
func (h *Hamal) Exited() bool {
	select {
	case <-h.exited:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (h *Hamal) Kill() {
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.exited
}

// Stop sends SIGTERM and waits up to timeout, then kills.
func (h *Hamal) Stop(timeout time.Duration) error {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
		return h.err
	case <-time.After(timeout):
		h.Kill()
		return fmt.Errorf("hamal did not stop within %s after SIGTERM", timeout)
	}
}

var httpClient = &http.Client{Timeout: 3 * time.Second}

// Status reads /status.
func (h *Hamal) Status() (pipeline.Status, error) {
	var st pipeline.Status
	resp, err := httpClient.Get("http://" + h.AdminAddr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// Metrics is one scrape of /metrics: value by series ("name{labels}" as
// exposed, or "name" when unlabelled).
type Metrics map[string]float64

// Sum adds every series of metric name whose labels contain all of labels
// (e.g. `class="transient"`).
func (m Metrics) Sum(name string, labels ...string) float64 {
	var total float64
next:
	for series, v := range m {
		base := series
		if i := strings.IndexByte(series, '{'); i >= 0 {
			base = series[:i]
		}
		if base != name {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(series, l) {
				continue next
			}
		}
		total += v
	}
	return total
}

// Metrics reads /metrics.
func (h *Hamal) Metrics() (Metrics, error) {
	resp, err := httpClient.Get("http://" + h.AdminAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := make(Metrics)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		m[line[:sp]] = v
	}
	return m, sc.Err()
}

// Memory is a process's resident memory from /proc/<pid>/status.
type Memory struct {
	RSS     int64 // VmRSS, bytes
	PeakRSS int64 // VmHWM, bytes
}

// Memory reads VmRSS and VmHWM of the process.
func (h *Hamal) Memory() (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.Pid()))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.RSS = kb << 10
		case "VmHWM:":
			m.PeakRSS = kb << 10
		}
	}
	return m, nil
}
