package mysql

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/retry"
)

// Lease states.
const (
	leaseHeld         int32 = iota + 1
	leaseReconnecting       // connection lost; re-acquiring
	leaseLost               // another session took it: fatal
)

const (
	leasePingInterval = 2 * time.Second
	leaseIOTimeout    = 10 * time.Second
	maxLockNameLen    = 64 // MariaDB/MySQL limit on user-level lock names
)

// lease is the fencing lease: a user-level lock GET_LOCK('hamal/<channel>')
// held by a dedicated connection for as long as the sink is open. The
// server releases it when that session ends, so a crashed process never
// blocks its successor. A goroutine pings the connection; when it is lost
// the lease is re-acquired, and if another session got it meanwhile the
// lease is lost for good and Apply fails with ErrLeaseHeld.
type lease struct {
	sink     *Sink
	name     string
	interval time.Duration

	mu     sync.Mutex // guards conn
	conn   *client.Conn
	connID uint32

	state   atomic.Int32
	started bool
	stop    chan struct{}
	done    chan struct{}
}

func leaseName(channel string) string {
	name := "hamal/" + channel
	if len(name) <= maxLockNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(channel))
	return "hamal/" + hex.EncodeToString(sum[:])[:40]
}

func newLease(s *Sink, name string) *lease {
	return &lease{sink: s, name: name, interval: leasePingInterval,
		stop: make(chan struct{}), done: make(chan struct{})}
}

func withIOTimeout(c *client.Conn) error {
	c.ReadTimeout, c.WriteTimeout = leaseIOTimeout, leaseIOTimeout
	return nil
}

// acquire connects and takes the lock without waiting. A previous session
// of this process that the server still believes alive (the client saw the
// connection break first) is killed and the lock taken over.
func (l *lease) acquire(ctx context.Context) error {
	s := l.sink
	c, err := s.dial(ctx, "", withIOTimeout)
	if err != nil {
		return err
	}
	got, err := getLock(c, l.name, 0)
	if err == nil && !got && l.connID != 0 {
		var owner int64
		if owner, err = lockOwner(c, l.name); err == nil && owner == int64(l.connID) {
			s.log.Warn("fencing lease still held by this process's previous session; killing it", "lock", l.name, "connection_id", owner)
			if _, err = c.Execute(fmt.Sprintf("KILL %d", owner)); err == nil || serverCode(err) == 1094 { // 1094: unknown thread
				got, err = getLock(c, l.name, 5)
			}
		}
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("mysql sink: take fencing lease %s on %s: %w", l.name, s.cfg.Addr, err)
	}
	if !got {
		c.Close()
		return fmt.Errorf("another hamal process is applying channel %s to %s (lock %s is held); stop it first: %w",
			s.cfg.Channel, s.cfg.Addr, l.name, ErrLeaseHeld)
	}
	l.mu.Lock()
	if l.conn != nil {
		l.conn.Close()
	}
	l.conn, l.connID = c, c.GetConnectionID()
	l.mu.Unlock()
	l.state.Store(leaseHeld)
	return nil
}

func getLock(c *client.Conn, name string, timeoutSec int) (bool, error) {
	r, err := c.Execute(fmt.Sprintf("SELECT GET_LOCK(%s, %d)", quoteString(name), timeoutSec))
	if err != nil {
		return false, err
	}
	if null, _ := r.IsNull(0, 0); null {
		return false, errors.New("GET_LOCK returned NULL")
	}
	v, err := r.GetInt(0, 0)
	return v == 1, err
}

func lockOwner(c *client.Conn, name string) (int64, error) {
	r, err := c.Execute("SELECT IFNULL(IS_USED_LOCK(" + quoteString(name) + "), 0)")
	if err != nil {
		return 0, err
	}
	return r.GetInt(0, 0)
}

func (l *lease) start() { l.started = true; go l.run() }

func (l *lease) run() {
	defer close(l.done)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if l.state.Load() == leaseLost {
			continue
		}
		l.mu.Lock()
		var err error
		if l.conn != nil {
			if err = l.conn.Ping(); err != nil {
				l.conn.Close()
				l.conn = nil
			}
		}
		lost := l.conn == nil
		l.mu.Unlock()
		if !lost {
			continue
		}
		if l.state.Swap(leaseReconnecting) == leaseHeld {
			l.sink.log.Warn("fencing lease connection lost; re-acquiring", "lock", l.name, "err", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), leaseIOTimeout)
		err = l.acquire(ctx)
		cancel()
		switch {
		case err == nil:
			l.sink.log.Info("fencing lease re-acquired", "lock", l.name)
		case errors.Is(err, ErrLeaseHeld):
			l.state.Store(leaseLost)
			l.sink.log.Error("fencing lease lost to another process", "lock", l.name, "err", err)
		default:
			l.sink.log.Warn("re-acquiring fencing lease failed; will retry", "lock", l.name, "err", err)
		}
	}
}

// check returns nil while the lease is held, ErrLeaseHeld (fatal) once it
// was lost to another process, and a transient error while re-acquiring.
func (l *lease) check() error {
	switch l.state.Load() {
	case leaseHeld:
		return nil
	case leaseLost:
		return fmt.Errorf("fencing lease %s on %s was taken by another hamal process applying channel %s; stop it first: %w",
			l.name, l.sink.cfg.Addr, l.sink.cfg.Channel, ErrLeaseHeld)
	}
	return retry.Transient(fmt.Errorf("fencing lease %s on %s is being re-acquired after its connection was lost", l.name, l.sink.cfg.Addr))
}

// close stops the keep-alive and releases the lock.
func (l *lease) close() error {
	select {
	case <-l.stop:
	default:
		close(l.stop)
		if l.started {
			select {
			case <-l.done:
			case <-time.After(2 * leaseIOTimeout):
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	_, err := l.conn.Execute("DO RELEASE_LOCK(" + quoteString(l.name) + ")")
	l.conn.Close()
	l.conn = nil
	if err != nil {
		return fmt.Errorf("mysql sink: release fencing lease %s: %w", l.name, err)
	}
	return nil
}
