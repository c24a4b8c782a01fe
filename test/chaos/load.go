package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/test/workload"
)

// LoadOptions configures a Load.
type LoadOptions struct {
	Addr    string // the source, host:port, user root without password
	Writers int    // default 2
	// FirstWriter numbers the writers from here (default 1). Each writer
	// number owns its own id space: a second Load on the same tables must
	// start after the first one's writers.
	FirstWriter int
	Seed        uint64
	// Pause is the think time after each transaction of a writer; it keeps
	// a loaded two-core machine from spending everything on the source.
	Pause time.Duration
	// Extra, when set, returns statements appended to each transaction
	// (e.g. updates of rows a concurrent target writer locks).
	Extra func(rng *rand.Rand) []string
}

// Load writes test/workload transactions to the source from a few writers
// until Stop. A writer whose connection breaks (the source was killed)
// reconnects and goes on; deadlocks and lock wait timeouts are retried.
// Any other error stops the load and is returned by Stop.
type Load struct {
	// Committed counts transactions whose COMMIT succeeded; Lost counts
	// those cut off by a broken connection (committed or not: the target is
	// compared with what the source holds, so either is fine).
	Committed, Lost atomic.Int64

	opts   LoadOptions
	addr   atomic.Pointer[string]
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

// StartLoad starts the writers.
func StartLoad(opts LoadOptions) *Load {
	if opts.Writers == 0 {
		opts.Writers = 2
	}
	if opts.FirstWriter == 0 {
		opts.FirstWriter = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{opts: opts, cancel: cancel}
	l.addr.Store(&opts.Addr)
	for w := opts.FirstWriter; w < opts.FirstWriter+opts.Writers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := l.write(ctx, w); err != nil && ctx.Err() == nil {
				l.mu.Lock()
				if l.err == nil {
					l.err = err
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// SetAddr points the writers at another server (after a failover); each
// reconnects before its next transaction.
func (l *Load) SetAddr(addr string) { l.addr.Store(&addr) }

// Err returns the error that stopped a writer, if any.
func (l *Load) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Stop stops the writers and waits for them.
func (l *Load) Stop() error {
	l.cancel()
	l.wg.Wait()
	return l.Err()
}

// WaitCommitted waits until at least n more transactions than now were
// committed, or timeout.
func (l *Load) WaitCommitted(n int64, timeout time.Duration) error {
	target := l.Committed.Load() + n
	deadline := time.Now().Add(timeout)
	for l.Committed.Load() < target {
		if err := l.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("load committed %d of %d transactions within %s", l.Committed.Load()-(target-n), n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (l *Load) write(ctx context.Context, worker int) error {
	g := workload.New(worker, l.opts.Seed)
	rng := rand.New(rand.NewPCG(l.opts.Seed, uint64(worker)+1000))
	var conn *client.Conn
	var connAddr string
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for ctx.Err() == nil {
		addr := *l.addr.Load()
		if conn != nil && connAddr != addr {
			conn.Close()
			conn = nil
		}
		if conn == nil {
			c, err := client.Connect(addr, "root", "", "")
			if err != nil {
				sleep(ctx, 200*time.Millisecond) // the source is down: wait for it
				continue
			}
			conn, connAddr = c, addr
		}
		stmts := g.Txn()
		if l.opts.Extra != nil {
			stmts = append(stmts, l.opts.Extra(rng)...)
		}
		for attempt := 0; ; attempt++ {
			err := workload.Run(conn, stmts)
			if err == nil {
				l.Committed.Add(1)
				break
			}
			var me *mysql.MyError
			if errors.As(err, &me) {
				if (me.Code == 1213 || me.Code == 1205) && attempt < 20 {
					continue
				}
				if me.Code == 1290 || me.Code == 1836 { // read-only during a failover
					l.Lost.Add(1)
					sleep(ctx, 200*time.Millisecond)
					break
				}
				return fmt.Errorf("writer %d: %w", worker, err)
			}
			// Not a server error: the connection broke.
			l.Lost.Add(1)
			conn.Close()
			conn = nil
			break
		}
		sleep(ctx, l.opts.Pause)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
