package chaos

import (
	"fmt"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/test/harness"
)

// TestSourceFailover: the source has a native MariaDB replica (same GTID
// domain, CHANGE MASTER … MASTER_USE_GTID=slave_pos). While the workload
// runs, writes stop, the replica catches up, the primary is killed with
// SIGKILL and the replica is promoted; the workload continues on it. Only
// then is hamal's config pointed at the replica and hamal restarted: it
// must continue from its GTID checkpoint, so the transactions written on
// the promoted replica before hamal came back are not skipped, and nothing
// is applied twice in a way that shows. The target must equal the replica.
func TestSourceFailover(t *testing.T) {
	gate(t, false)
	e := newEnv(t, envOptions{})
	// The replica shares the primary's GTID domain (1), as a MariaDB
	// failover pair does, so its GTIDs continue the same sequence.
	replica := harness.MariaDB(t, harness.Options{ServerID: 3, Args: []string{"--gtid-domain-id=1"}})
	replica.MustExec(t, "RESET MASTER", "SET GLOBAL gtid_slave_pos=''",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos", e.src.Port),
		"START SLAVE")
	replLink, err := proxies.NewLink("replica", replica.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(replLink.Close)

	rep := &Report{Scenario: "source-failover"}
	load := e.startLoad(t, LoadOptions{Writers: 2})
	if err := load.WaitCommitted(pick(int64(500), 3000), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	// A planned failover: writes stop, the replica catches up.
	committed := load.Committed.Load()
	if err := load.Stop(); err != nil {
		t.Fatal(err)
	}
	primaryPos, err := e.src.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitFor(t.Context(), 2*time.Minute, func() (bool, error) {
		rows, err := replica.Query("SELECT @@gtid_slave_pos")
		return err == nil && rows[0][0] == primaryPos, err
	}); err != nil {
		t.Fatalf("replica did not catch up to %s: %v", primaryPos, err)
	}
	if err := e.src.Kill(); err != nil {
		t.Fatal(err)
	}
	rep.Faults++
	replica.MustExec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0")
	failedAt := time.Now()

	// Writes go on on the promoted replica while hamal still points at the
	// dead primary (and retries it).
	load2 := e.startLoad(t, LoadOptions{Writers: 2, FirstWriter: 3, Addr: replica.Addr})
	if err := load2.WaitCommitted(pick(int64(200), 1000), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	// Hamal, still pointed at the dead primary, retries it on its own.
	st, err := e.hamal.Status()
	if err != nil {
		t.Fatal(err)
	}
	rep.Note("hamal while the primary is dead: state %s, last error %q", st.State, st.LastError)

	// The operator points hamal at the new primary and restarts it.
	if err := e.hamal.Stop(time.Minute); err != nil {
		t.Logf("stop hamal: %v", err)
	}
	e.cfg.SourceAddr = replLink.Addr()
	if err := e.cfg.Write(e.cfgPath); err != nil {
		t.Fatal(err)
	}
	e.startHamal(t)
	e.srcLink, e.src = replLink, replica // report and compare against the new source
	e.measureRecovery(t, rep, replica, "failover to promoted replica", pick(2*time.Minute, 5*time.Minute))
	rep.Note("failover: primary killed at gtid %s; hamal replicating from the replica %s after the primary died",
		primaryPos, time.Since(failedAt).Round(10*time.Millisecond))
	rep.Txns = committed
	e.finish(t, rep, load2, replica)
	t.Logf("transactions on the primary %d, on the promoted replica %d", committed, load2.Committed.Load())
}
