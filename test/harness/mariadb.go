package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// Options configures one MariaDB instance.
type Options struct {
	ServerID int      // server_id and gtid_domain_id; default 1
	Args     []string // extra mariadbd flags, e.g. "--binlog-format=STATEMENT"
	Dir      string   // data directory parent; default a new temp dir
	Port     int      // default a free loopback port
	// Settings are the server settings (charset, time zone, sql_mode…)
	// of a matrix row; the zero value is utf8mb4 and UTC.
	Settings Settings
}

// Server is a running MariaDB instance. User root on 127.0.0.1 has no
// password.
type Server struct {
	Addr    string // host:port on 127.0.0.1
	Port    int
	DataDir string

	opts    Options
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
	mu      sync.Mutex
	// stopping is set when Stop or Kill signals the server, ready once it
	// accepted a connection: an exit while ready and not stopping is a crash.
	stopping atomic.Bool
	ready    atomic.Bool
}

var installOnce sync.Once
var installErr error

// EnsureInstalled makes sure mariadbd and mariadb-install-db are on the
// machine, installing Debian's mariadb-server when running as root.
func EnsureInstalled() error {
	installOnce.Do(func() {
		if haveBinaries() {
			return
		}
		if os.Geteuid() != 0 {
			installErr = errors.New("mariadbd not found: install MariaDB server (Debian/Ubuntu: sudo apt-get install -y mariadb-server) and rerun")
			return
		}
		for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "mariadb-server", "mariadb-client"}} {
			cmd := exec.Command("apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				installErr = fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
		if !haveBinaries() {
			installErr = errors.New("mariadb-server installed but mariadbd still not found on PATH or in /usr/sbin")
		}
	})
	return installErr
}

func haveBinaries() bool {
	_, err1 := lookPath("mariadbd")
	_, err2 := lookPath("mariadb-install-db")
	return err1 == nil && err2 == nil
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartMariaDB installs (when needed), initialises and starts an instance.
func StartMariaDB(opts Options) (*Server, error) {
	if err := EnsureInstalled(); err != nil {
		return nil, err
	}
	if opts.ServerID == 0 {
		opts.ServerID = 1
	}
	parent := opts.Dir
	if parent == "" {
		d, err := os.MkdirTemp(scratchRoot(), "hamal-mariadb-")
		if err != nil {
			return nil, err
		}
		parent = d
	}
	dataDir := filepath.Join(parent, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "mysql")); err != nil {
		template, err := templateDataDir()
		if err != nil {
			return nil, err
		}
		if out, err := exec.Command("cp", "-a", template+"/.", dataDir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("copy template data dir: %w\n%s", err, out)
		}
	}
	s := &Server{DataDir: dataDir, opts: opts, logPath: filepath.Join(parent, "mariadbd.log")}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// templateDataDir returns a data directory initialised by
// mariadb-install-db once per machine (it takes ~15 s); each instance starts
// from a copy. A file lock keeps parallel test binaries from racing.
func templateDataDir() (string, error) {
	base := filepath.Join(scratchRoot(), "hamal-mariadb-template")
	dir := filepath.Join(base, "data")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(base, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(filepath.Join(dir, "mysql")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	installDB, _ := lookPath("mariadb-install-db")
	cmd := exec.Command(installDB, "--no-defaults", "--datadir="+tmp,
		"--auth-root-authentication-method=normal", "--user=root", "--skip-test-db",
		"--innodb-log-file-size=16M")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("mariadb-install-db in %s: %w\n%s", tmp, err, out)
	}
	return dir, os.Rename(tmp, dir)
}

// scratchRoot is where data directories go by default: tmpfs (/dev/shm)
// when the machine has it, since this machine's disk makes a MariaDB copy
// and start take seconds; the system temp dir otherwise. Benchmarks that
// must measure a real disk pass Options.Dir.
func scratchRoot() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if f, err := os.CreateTemp("/dev/shm", "hamal-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return os.TempDir()
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.Port == 0 {
		s.Port = s.opts.Port
	}
	if s.Port == 0 {
		if s.Port, err = FreePort(); err != nil {
			return err
		}
	}
	s.Addr = "127.0.0.1:" + strconv.Itoa(s.Port)
	mariadbd, _ := lookPath("mariadbd")
	id := strconv.Itoa(s.opts.ServerID)
	args := []string{"--no-defaults", "--user=root", "--datadir=" + s.DataDir,
		"--port=" + strconv.Itoa(s.Port), "--bind-address=127.0.0.1",
		"--socket=" + filepath.Join(s.DataDir, "sock"), "--pid-file=" + filepath.Join(s.DataDir, "pid"),
		"--server-id=" + id, "--log-bin=" + filepath.Join(s.DataDir, "bin"),
		"--binlog-format=ROW", "--binlog-row-image=FULL", "--binlog-row-metadata=FULL",
		"--log-slave-updates=ON", "--gtid-strict-mode=ON", "--gtid-domain-id=" + id,
		"--skip-name-resolve", "--innodb-buffer-pool-size=128M", "--innodb-log-file-size=16M", "--max-connections=500",
		"--log-error=" + s.logPath,
		// Its own tmpdir: temporary tables in the shared /tmp were seen
		// deleted under a running server ("Error on delete of
		// '/tmp/#sql-temptable…'"), failing information_schema reads.
		"--tmpdir=" + s.DataDir}
	args = append(args, s.opts.Settings.args()...)
	args = append(args, s.opts.Args...)
	cmd := exec.Command(mariadbd, args...)
	cmd.Env = s.opts.Settings.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	waited, err := Spawn(cmd)
	if err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	s.cmd = cmd
	s.stopping.Store(false)
	exited := make(chan struct{})
	s.exited = exited
	go func() {
		werr := <-waited
		if !s.stopping.Load() && s.ready.Load() {
			// Nothing asked it to stop: say so on stderr, with its log,
			// since the test that trips over it sees only a refused
			// connection.
			fmt.Fprintf(os.Stderr, "harness: mariadbd on %s exited unexpectedly (%v); log %s:\n%s\n",
				s.Addr, werr, s.logPath, tail(s.logPath))
		}
		close(exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("mariadbd exited during start; log %s:\n%s", s.logPath, tail(s.logPath))
		default:
		}
		c, err := client.Connect(s.Addr, "root", "", "")
		if err == nil {
			c.Close()
			s.ready.Store(true)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return fmt.Errorf("mariadbd on %s not ready after 60s; log %s:\n%s", s.Addr, s.logPath, tail(s.logPath))
}

// CPUTime is the CPU time (user and system) the server process has used
// so far, from /proc (Linux only).
func (s *Server) CPUTime() (time.Duration, error) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0, errors.New("server not started")
	}
	return processCPUTime(cmd.Process.Pid)
}

// processCPUTime is the CPU time (user and system) process pid has used,
// from /proc/<pid>/stat (Linux only).
func processCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from after it.
	rest := string(b)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	const ticksPerSecond = 100 // USER_HZ on every Linux architecture Go supports
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop shuts the server down cleanly (SIGTERM, then SIGKILL after 30 s).
func (s *Server) Stop() error { return s.stop(syscall.SIGTERM) }

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() error { return s.stop(syscall.SIGKILL) }

func (s *Server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.stopping.Store(true)
	s.ready.Store(false)
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	return nil
}

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start()
}

// Remove stops the server and deletes its data directory.
func (s *Server) Remove() error {
	err := s.Stop()
	if rmErr := os.RemoveAll(filepath.Dir(s.DataDir)); err == nil {
		err = rmErr
	}
	return err
}

// Connect opens a root connection to the server.
func (s *Server) Connect(db string) (*client.Conn, error) {
	return client.Connect(s.Addr, "root", "", db)
}

// Exec runs statements on a fresh root connection.
func (s *Server) Exec(stmts ...string) error {
	c, err := s.Connect("")
	if err != nil {
		return err
	}
	defer c.Close()
	for _, q := range stmts {
		if _, err := c.Execute(q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// Query runs one statement and returns every row as strings (NULL as "NULL").
func (s *Server) Query(q string) ([][]string, error) {
	c, err := s.Connect("")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, err := c.Execute(q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer r.Close()
	rows := make([][]string, 0, len(r.Values))
	for i := range r.Values {
		row := make([]string, len(r.Values[i]))
		for j := range row {
			v := r.Values[i][j]
			if v.Type == mysql.FieldValueTypeNull {
				row[j] = "NULL"
				continue
			}
			// GetString may alias the result's buffers, which r.Close
			// hands back to go-mysql's pool for the next query to
			// overwrite: copy.
			s, _ := r.GetString(i, j)
			row[j] = strings.Clone(s)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// MariaDB starts a server for the test and stops and removes it when the
// test ends.
func MariaDB(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := StartMariaDB(opts)
	if err != nil {
		t.Fatalf("start MariaDB: %v", err)
	}
	t.Cleanup(func() {
		if opts.Dir == "" {
			_ = s.Remove()
		} else {
			_ = s.Stop()
		}
	})
	return s
}

// MustExec runs statements or fails the test.
func (s *Server) MustExec(t testing.TB, stmts ...string) {
	t.Helper()
	if err := s.Exec(stmts...); err != nil {
		t.Fatal(err)
	}
}

// MustQuery runs a query or fails the test.
func (s *Server) MustQuery(t testing.TB, q string) [][]string {
	t.Helper()
	rows, err := s.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// GTIDPos returns @@gtid_binlog_pos.
func (s *Server) GTIDPos() (string, error) {
	rows, err := s.Query("SELECT @@gtid_binlog_pos")
	if err != nil {
		return "", err
	}
	return rows[0][0], nil
}

// WaitFor polls cond until it returns true or the timeout passes.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("timed out after %s: %w", timeout, last)
			}
			return fmt.Errorf("timed out after %s", timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
