package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures one redis-server instance.
type RedisOptions struct {
	Password string   // requirepass; empty: no auth
	Args     []string // extra redis-server flags, e.g. "--repl-backlog-size", "16kb"
	Dir      string   // working directory; default a new temp dir
	Port     int      // default a free loopback port
	// TLS, when set, makes the server take TLS only (--tls-port, --port
	// 0) with these certificates; Port is then the TLS port.
	TLS *Certs
	// ClientCerts requires client certificates signed by the CA (with TLS).
	ClientCerts bool
}

// Redis is a running redis-server on 127.0.0.1, without persistence
// (--save ” --appendonly no) and with diskless replication that starts at
// once (repl-diskless-sync-delay 0).
type Redis struct {
	Addr string
	Port int
	Dir  string

	opts     RedisOptions
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	logPath  string
	stopping atomic.Bool
	ready    atomic.Bool
}

// StartRedis starts a redis-server and waits until it answers PING.
func StartRedis(opts RedisOptions) (*Redis, error) {
	if _, err := lookPath("redis-server"); err != nil {
		return nil, errors.New("redis-server not found: install it (Debian/Ubuntu: sudo apt-get install -y redis-server) and rerun")
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp(scratchRoot(), "hamal-redis-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	r := &Redis{Dir: dir, opts: opts, logPath: filepath.Join(dir, "redis.log")}
	if err := r.start(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Port == 0 {
		r.Port = r.opts.Port
	}
	if r.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return err
		}
		r.Port = p
	}
	r.Addr = "127.0.0.1:" + strconv.Itoa(r.Port)
	bin, _ := lookPath("redis-server")
	args := []string{"--port", strconv.Itoa(r.Port)}
	if c := r.opts.TLS; c != nil {
		auth := "no"
		if r.opts.ClientCerts {
			auth = "yes"
		}
		args = []string{"--port", "0", "--tls-port", strconv.Itoa(r.Port), "--tls-cert-file", c.Server, "--tls-key-file", c.ServerKey,
			"--tls-ca-cert-file", c.CA, "--tls-auth-clients", auth}
	}
	args = append(args, "--bind", "127.0.0.1", "--dir", r.Dir,
		"--save", "", "--appendonly", "no", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
		"--logfile", r.logPath, "--daemonize", "no", "--protected-mode", "no")
	if r.opts.Password != "" {
		args = append(args, "--requirepass", r.opts.Password)
	}
	args = append(args, r.opts.Args...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	waited, err := Spawn(cmd)
	if err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	r.cmd = cmd
	r.stopping.Store(false)
	exited := make(chan struct{})
	r.exited = exited
	go func() {
		werr := <-waited
		if !r.stopping.Load() && r.ready.Load() {
			fmt.Fprintf(os.Stderr, "harness: redis-server on %s exited unexpectedly (%v); log %s:\n%s\n",
				r.Addr, werr, r.logPath, tail(r.logPath))
		}
		close(exited)
	}()
	c := r.Client()
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited during start; log %s:\n%s", r.logPath, tail(r.logPath))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			r.ready.Store(true)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return fmt.Errorf("redis-server on %s not ready after 30s; log %s:\n%s", r.Addr, r.logPath, tail(r.logPath))
}

// Client returns a new go-redis client for db 0; the caller closes it.
func (r *Redis) Client() *redis.Client { return r.ClientDB(0) }

// ClientDB returns a new go-redis client for one database.
// Its timeouts are 30 s, not go-redis's 3 s: a loaded test machine (two
// vCPUs, a host that pauses the VM for seconds) can stall a loopback
// round trip past 3 s, and MaxRetries is off so a timed-out write is not
// sent twice.
func (r *Redis) ClientDB(db int) *redis.Client {
	o := &redis.Options{Addr: r.Addr, Password: r.opts.Password, DB: db, MaxRetries: -1,
		DialTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	if c := r.opts.TLS; c != nil {
		cfg, err := c.ClientConfig()
		if err == nil {
			o.TLSConfig = cfg
		}
	}
	return redis.NewClient(o)
}

// Stop shuts the server down (SIGTERM; without persistence nothing is saved).
func (r *Redis) Stop() error { return r.stop(syscall.SIGTERM) }

// Kill stops the server with SIGKILL, as a crash would.
func (r *Redis) Kill() error { return r.stop(syscall.SIGKILL) }

func (r *Redis) stop(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return nil
	}
	r.stopping.Store(true)
	r.ready.Store(false)
	_ = r.cmd.Process.Signal(sig)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
	return nil
}

// Restart stops the server with SHUTDOWN SAVE, so that it writes an RDB
// holding its data and replication id and offset, and starts it again on the
// same port and directory: the way a master restarts without losing its
// replicas' ability to continue (+CONTINUE).
func (r *Redis) Restart() error {
	c := r.Client()
	r.stopping.Store(true)
	err := c.Do(context.Background(), "SHUTDOWN", "SAVE").Err()
	c.Close()
	if err != nil && !isClosedConn(err) {
		return fmt.Errorf("shutdown save: %w", err)
	}
	r.mu.Lock()
	exited := r.exited
	r.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		return errors.New("redis-server did not exit after SHUTDOWN SAVE")
	}
	r.mu.Lock()
	r.cmd = nil
	r.mu.Unlock()
	return r.start()
}

// isClosedConn reports the error SHUTDOWN returns when it works: the
// server closes the connection without a reply.
func isClosedConn(err error) bool {
	return err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || err.Error() == "EOF" || errors.Is(err, syscall.ECONNRESET))
}

// Remove stops the server and deletes its directory.
func (r *Redis) Remove() error {
	err := r.Kill()
	if rmErr := os.RemoveAll(r.Dir); err == nil {
		err = rmErr
	}
	return err
}

// Info returns one field of INFO (e.g. "sync_full" from section "stats").
func (r *Redis) Info(section, field string) (string, error) {
	c := r.Client()
	defer c.Close()
	s, err := c.Info(context.Background(), section).Result()
	if err != nil {
		return "", err
	}
	return infoField(s, field), nil
}

func infoField(info, field string) string {
	for len(info) > 0 {
		line := info
		if i := indexByte(info, '\n'); i >= 0 {
			line, info = info[:i], info[i+1:]
		} else {
			info = ""
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) > len(field) && line[:len(field)] == field && line[len(field)] == ':' {
			return line[len(field)+1:]
		}
	}
	return ""
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

// RedisServer starts a redis-server for the test and removes it when the
// test ends.
func RedisServer(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	r, err := StartRedis(opts)
	if err != nil {
		t.Fatalf("start redis: %v", err)
	}
	t.Cleanup(func() {
		if opts.Dir == "" {
			_ = r.Remove()
		} else {
			_ = r.Kill()
		}
	})
	return r
}
