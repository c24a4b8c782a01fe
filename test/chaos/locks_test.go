package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/test/harness"
)

const hotRows = 40

// TestTargetLockContention: a concurrent writer on the target takes row
// locks (SELECT … FOR UPDATE, two rows in random order, held longer than
// the target's innodb_lock_wait_timeout) on rows the channel keeps
// updating, so hamal's batches hit lock wait timeouts and deadlocks. The
// writer never changes data, so the target must still equal the source; the
// test requires that hamal actually retried.
func TestTargetLockContention(t *testing.T) {
	gate(t, false)
	seed := make([]string, 0, hotRows)
	for i := 1; i <= hotRows; i++ {
		seed = append(seed, fmt.Sprintf("(%d, 0)", i))
	}
	e := newEnv(t, envOptions{
		schema: []string{"CREATE TABLE app.hot (id INT PRIMARY KEY, v INT NOT NULL)",
			"INSERT INTO app.hot VALUES " + strings.Join(seed, ",")},
		tables: map[string]string{"app.hot": "id"},
		// Short lock waits on the target so hamal's sessions give up
		// (1205) while the locker holds rows.
		targetSetup: []string{"SET GLOBAL innodb_lock_wait_timeout = 1"},
	})
	deadlocksBefore := statusVar(t, e.dst, "Innodb_deadlocks")
	waitsBefore := statusVar(t, e.dst, "Innodb_row_lock_waits")
	rep := &Report{Scenario: "target-lock-contention"}
	load := e.startLoad(t, LoadOptions{Writers: 2, Extra: func(rng *rand.Rand) []string {
		a, b := 1+rng.IntN(hotRows), 1+rng.IntN(hotRows)
		return []string{
			fmt.Sprintf("UPDATE app.hot SET v = v + 1 WHERE id = %d", a),
			fmt.Sprintf("UPDATE app.hot SET v = v + 1 WHERE id = %d", b),
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var locks, lockerDeadlocks atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lockRows(ctx, e.dst.Addr, uint64(i), &locks, &lockerDeadlocks)
		}()
	}
	rep.Faults = 1
	e.hold(t, pick(15*time.Second, 2*time.Minute))
	cancel()
	wg.Wait()
	e.measureRecovery(t, rep, e.src, "target lock contention", pick(2*time.Minute, 5*time.Minute))

	retries := e.metric(t, "hamal_retries_total", `side="sink"`)
	deadlocks := statusVar(t, e.dst, "Innodb_deadlocks") - deadlocksBefore
	waits := statusVar(t, e.dst, "Innodb_row_lock_waits") - waitsBefore
	rep.Note("locker: %d lock holds, %d deadlocks seen by the locker; target: %d deadlocks, %d row lock waits; hamal sink retries %.0f",
		locks.Load(), lockerDeadlocks.Load(), deadlocks, waits, retries)
	if retries == 0 {
		t.Errorf("hamal never retried a batch: the concurrent writer did not get in its way (locks %d, target lock waits %d)", locks.Load(), waits)
	}
	e.finish(t, rep, load, e.src)
}

// lockRows repeatedly locks two hot rows in random order on the target and
// holds them for up to 2.5 s, then rolls back: it changes no data.
func lockRows(ctx context.Context, addr string, seed uint64, locks, deadlocks *atomic.Int64) {
	rng := rand.New(rand.NewPCG(seed, 77))
	var conn *client.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			c, err := client.Connect(addr, "root", "", "")
			if err != nil {
				sleep(ctx, 200*time.Millisecond)
				continue
			}
			conn = c
		}
		a, b := 1+rng.IntN(hotRows), 1+rng.IntN(hotRows)
		err := func() error {
			if _, err := conn.Execute("BEGIN"); err != nil {
				return err
			}
			defer conn.Execute("ROLLBACK")
			for _, id := range []int{a, b} {
				if _, err := conn.Execute(fmt.Sprintf("SELECT v FROM app.hot WHERE id = %d FOR UPDATE", id)); err != nil {
					return err
				}
				sleep(ctx, 50*time.Millisecond)
			}
			locks.Add(1)
			sleep(ctx, time.Duration(300+rng.IntN(2200))*time.Millisecond)
			return nil
		}()
		var me *mysql.MyError
		switch {
		case err == nil:
		case errors.As(err, &me) && me.Code == 1213:
			deadlocks.Add(1)
		case errors.As(err, &me):
			// lock wait timeout: try other rows
		default:
			conn.Close()
			conn = nil
		}
	}
}

func statusVar(t *testing.T, s *harness.Server, name string) int64 {
	t.Helper()
	rows := s.MustQuery(t, "SHOW GLOBAL STATUS LIKE '"+name+"'")
	if len(rows) == 0 {
		t.Fatalf("status variable %s missing on %s", name, s.Addr)
	}
	n, _ := strconv.ParseInt(rows[0][1], 10, 64)
	return n
}
