package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hamal-replication/hamal/test/harness"
)

// contender is one replication tool run as its own process, from master
// to target.
type contender struct {
	name string
	dir  string
	// argv starts the process (the same argv again after a kill: Hamal
	// resumes from its checkpoint, RedisShake starts over).
	argv []string
	// admin is Hamal's admin address (pprof), empty for RedisShake.
	admin string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	cpuDone time.Duration // CPU of processes that have exited
	starts  int
}

// newHamal writes a config for a channel master → target and returns the
// contender; bin is the hamal binary.
func newHamal(bin, dir, master, target string) (*contender, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	admin := "127.0.0.1:" + strconv.Itoa(port)
	cfg := fmt.Sprintf(`name: bench-redis
source:
  kind: redis
  addr: %s
sink:
  kind: redis
  addr: %s
apply:
  workers: 16
  batch_txns: 256
checkpoint:
  dir: %s
admin:
  listen: %s
  pprof: true
log:
  level: warn
`, master, target, filepath.Join(dir, "checkpoint"), admin)
	path := filepath.Join(dir, "hamal.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return &contender{name: "hamal", dir: dir, argv: []string{bin, "run", "--config", path}, admin: admin}, nil
}

// newRedisShake writes a RedisShake config (its defaults but for the
// addresses and the directory) and returns the contender.
func newRedisShake(bin, dir, master, target string) (*contender, error) {
	cfg := fmt.Sprintf(`[sync_reader]
address = %q

[redis_writer]
address = %q

[advanced]
dir = %q
log_file = "shake.log"
log_level = "warn"
`, master, target, filepath.Join(dir, "data"))
	path := filepath.Join(dir, "shake.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return &contender{name: "redis-shake", dir: dir, argv: []string{bin, path}}, nil
}

func (c *contender) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	log, err := os.OpenFile(filepath.Join(c.dir, "output.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	c.cmd, c.exited, c.exitErr = cmd, make(chan struct{}), nil
	c.starts++
	exited := c.exited
	live.Lock()
	live.pids[cmd.Process.Pid] = true
	live.Unlock()
	go func() {
		err := cmd.Wait()
		live.Lock()
		delete(live.pids, cmd.Process.Pid)
		live.Unlock()
		log.Close()
		c.mu.Lock()
		c.exitErr = err
		if st := cmd.ProcessState; st != nil {
			c.cpuDone += st.UserTime() + st.SystemTime()
		}
		c.mu.Unlock()
		close(exited)
	}()
	return nil
}

// running reports whether the current process is alive.
func (c *contender) running() bool {
	c.mu.Lock()
	ch := c.exited
	c.mu.Unlock()
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// signal sends sig to the current process.
func (c *contender) signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmd.Process.Signal(sig)
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *contender) kill() {
	_ = c.signal(syscall.SIGKILL)
	<-c.exited
}

// stop ends the process (SIGTERM, then SIGKILL after 20 s).
func (c *contender) stop() {
	if !c.running() {
		return
	}
	_ = c.signal(syscall.SIGCONT)
	_ = c.signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		c.kill()
	}
}

// cpu is the CPU time (user + system) of all of the contender's processes
// so far.
func (c *contender) cpu() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := c.cpuDone
	select {
	case <-c.exited:
		return total
	default:
	}
	return total + procCPU(c.cmd.Process.Pid)
}

// procCPU reads utime + stime of pid from /proc (clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// exitNote says how the last process ended, for the kill -9 table.
func (c *contender) exitNote() string {
	if c.running() {
		return "running"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("exited (%v)", c.exitErr)
}

// profile fetches a CPU profile of Hamal over d into path (admin.pprof).
func (c *contender) profile(path string, d time.Duration) error {
	if c.admin == "" {
		return nil
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.admin, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("pprof: %s %s", resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
