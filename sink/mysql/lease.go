package mysql

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
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

// lease is the channel's lease (sink's target protocol): a user-level
// lock GET_LOCK('hamal/<channel>') held by a dedicated connection for as
// long as the sink is open. The server releases it when that session
// ends, so a crashed process never blocks its successor.
//
// What fences is the proof in every unit (appendProof): a statement that
// fails unless IS_USED_LOCK names this process's lock session when it
// runs, right before COMMIT in the same multi-statement text (no extra
// round trip). The in-memory state kept by the goroutine that pings the
// lock connection only saves work: when the connection is lost it
// re-acquires the lock, and if another session got it meanwhile the lease
// is lost for good and every unit fails with ErrLeaseHeld before it
// starts.
type lease struct {
	sink     *Sink
	name     string
	quoted   string // name as an SQL literal
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
	return &lease{sink: s, name: name, quoted: quoteString(name), interval: leasePingInterval,
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
	addr := s.cfg.Addr
	if s.cfg.leaseAddr != "" {
		addr = s.cfg.leaseAddr
	}
	c, err := s.dialAddr(ctx, addr, "", withIOTimeout)
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
	// The session id the proof compares with is the one the server gives
	// the lock, read back: behind a proxy the handshake's connection id
	// can be the proxy's own.
	id, err := lockOwner(c, l.name)
	if err == nil && (id <= 0 || id > math.MaxUint32) {
		err = fmt.Errorf("IS_USED_LOCK gave %d right after GET_LOCK", id)
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("mysql sink: read back the session holding fencing lease %s on %s: %w", l.name, s.cfg.Addr, err)
	}
	l.mu.Lock()
	if l.conn != nil {
		l.conn.Close()
	}
	l.conn, l.connID = c, uint32(id)
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

// leaseProofStatement stands for the lease proof among the queued
// statements' tables.
const leaseProofStatement = "\x00lease proof"

// appendProof appends the lease proof: SET autocommit to its current
// value when the lock is held by this process's lock session, and to 2,
// which is no value of autocommit (error 1231), when it is free or held by
// another session. A connection id of 0 (no lock session yet, or
// SkipLease) never matches.
func (l *lease) appendProof(b []byte) []byte {
	l.mu.Lock()
	id := l.connID
	l.mu.Unlock()
	b = append(b, "SET autocommit=IF(IS_USED_LOCK("...)
	b = append(b, l.quoted...)
	b = append(b, ")<=>"...)
	b = strconv.AppendUint(b, uint64(id), 10)
	return append(b, ",@@autocommit,2)"...)
}

// proofFailed says what a failed proof means, reading the lock's holder
// on c (the unit's connection, still in its transaction): ErrLeaseHeld
// (fatal; the lease is lost for good) when another session holds the
// lock; transient when nobody does (this process's lock session ended and
// is being re-acquired) or this process re-acquired it on a new session
// since the proof was written.
func (l *lease) proofFailed(c *client.Conn) error {
	s := l.sink
	owner, err := lockOwner(c, l.name)
	if err != nil {
		return &stmtError{table: s.cfg.HamalSchema + " lease proof", err: fmt.Errorf("lease proof failed and the holder of lock %s cannot be read: %w", l.name, err), server: true}
	}
	l.mu.Lock()
	mine := l.connID
	l.mu.Unlock()
	switch {
	case owner == 0:
		return retry.Transient(fmt.Errorf("lease %s on %s is not held (this process's lock session ended); the unit was rolled back and is retried once the lease is re-acquired", l.name, s.cfg.Addr))
	case owner == int64(mine):
		return retry.Transient(fmt.Errorf("lease %s on %s was re-acquired on a new session during the unit; retrying", l.name, s.cfg.Addr))
	}
	l.state.Store(leaseLost)
	s.log.Error("lease lost to another process; unit rolled back", "lock", l.name, "holder_connection_id", owner, "own_connection_id", mine)
	return fmt.Errorf("lease %s on %s is held by connection %d, not this process's lock session %d: another hamal process applies channel %s, so this unit was rolled back and this process stops applying: %w",
		l.name, s.cfg.Addr, owner, mine, s.cfg.Channel, ErrLeaseHeld)
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
