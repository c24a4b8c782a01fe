package chaos

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/test/harness"
)

// TestHugeTransactionDuringCut: with the source link cut, one source
// transaction inserts a large number of rows (50k; 1M with
// HAMAL_CHAOS=long). The link heals, and while hamal applies that
// transaction to the target the target link is cut too, so the target
// rolls the half-applied transaction back and hamal must apply it again.
// The target must end equal to the source; hamal's peak RSS is reported
// (the source holds a whole transaction in memory today).
func TestHugeTransactionDuringCut(t *testing.T) {
	gate(t, false)
	rows := pick(50_000, 1_000_000)
	e := newEnv(t, envOptions{
		schema: []string{"CREATE TABLE app.big (id INT PRIMARY KEY, k INT NOT NULL, pad VARCHAR(64) NOT NULL)"},
		tables: map[string]string{"app.big": "id"},
	})
	load := e.startLoad(t, LoadOptions{Writers: 1, Pause: 20 * time.Millisecond})
	rep := &Report{Scenario: fmt.Sprintf("huge-transaction-%d-rows", rows)}
	if err := load.WaitCommitted(50, time.Minute); err != nil {
		t.Fatal(err)
	}
	memBefore, _ := e.hamal.Memory()

	healSrc := e.srcLink.Cut()
	start := time.Now()
	e.src.MustExec(t, fmt.Sprintf("INSERT INTO app.big SELECT seq, seq %% 1000, REPEAT('x', 40) FROM app.seq_1_to_%d", rows))
	rep.Note("huge transaction of %d rows committed on the source in %s during the source cut", rows, time.Since(start).Round(10*time.Millisecond))
	e.hold(t, pick(2*time.Second, 30*time.Second))
	healSrc()
	healed := time.Now()

	// Cut the target link once hamal is applying the transaction.
	if err := harness.WaitFor(t.Context(), 5*time.Minute, func() (bool, error) {
		if e.hamal.Exited() {
			return false, fmt.Errorf("hamal exited")
		}
		r, err := e.dst.Query("SELECT IFNULL(MAX(trx_rows_modified), 0) FROM information_schema.INNODB_TRX")
		if err != nil {
			return false, err
		}
		n, _ := strconv.Atoi(r[0][0])
		return n > rows/10, nil
	}); err != nil {
		t.Fatalf("hamal never applied the huge transaction: %v\n%s", err, lastLines(e.hamal.Output(), 30))
	}
	healDst := e.dstLink.Cut()
	e.hold(t, pick(2*time.Second, 30*time.Second))
	healDst()
	e.measureRecovery(t, rep, e.src, "huge transaction during cuts", pick(3*time.Minute, 20*time.Minute))
	rep.Note("huge transaction on the target %s after the source link healed", time.Since(healed).Round(10*time.Millisecond))
	mem, _ := e.hamal.Memory()
	rep.Note("hamal rss before %s, peak %s (%d-row transaction)", mib(memBefore.RSS), mib(mem.PeakRSS), rows)
	e.finish(t, rep, load, e.src)
}
