package mysql

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/netfault"
)

// TestLeaseHolderCutOff: the lease holder's network is cut while a unit of
// it is in flight. Its lock connection goes through one link, which is cut
// (the server sees the session end and releases the lock); its data
// connection through another, which holds the unit's text (statements,
// proof, COMMIT) in the network. A successor takes the lease and writes
// newer data; then the partition heals and the held unit reaches the
// server. It must not commit: the target keeps the successor's data, and
// the holder's Apply fails with ErrLeaseHeld.
func TestLeaseHolderCutOff(t *testing.T) {
	ctx := context.Background()
	createSchema(t, "nf", "CREATE TABLE %[1]s.t (id INT PRIMARY KEY, v VARCHAR(20))")
	tbl := table("nf", "t", []string{"id", "v"}, []int{0})
	lockLink := netfault.Start(t, server.Addr)
	dataLink := netfault.Start(t, server.Addr)

	holder, err := Open(ctx, Config{Addr: dataLink.Addr(), User: "root", Channel: "nf", Workers: 1, Logger: discardLogger(),
		leaseAddr: lockLink.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	apply(t, holder, txn(ins(tbl, int32(1), "holder-1")))

	hold := dataLink.Hold(t)
	inFlight := make(chan error, 1)
	go func() {
		inFlight <- holder.Apply(ctx, []*event.Txn{txn(upd(tbl, row(int32(1), "holder-1"), row(int32(1), "holder-2")), ins(tbl, int32(2), "holder-2"))})
	}()
	if err := harness.WaitFor(ctx, 10*time.Second, func() (bool, error) { return hold.Held() > 0, nil }); err != nil {
		t.Fatalf("the holder's unit never reached the network: %v", err)
	}

	lockLink.Cut()
	var successor *Sink
	err = harness.WaitFor(ctx, 10*time.Second, func() (bool, error) {
		s, err := Open(ctx, Config{Addr: server.Addr, User: "root", Channel: "nf", Workers: 1, Logger: discardLogger()})
		switch {
		case err == nil:
			successor = s
			return true, nil
		case errors.Is(err, ErrLeaseHeld):
			return false, nil // the server has not yet ended the cut session
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("successor never took the lease: %v", err)
	}
	defer successor.Close()
	apply(t, successor, txn(upd(tbl, row(int32(1), "holder-1"), row(int32(1), "successor-1"))))

	hold.Release() // the partition heals: the held unit reaches the server
	select {
	case err := <-inFlight:
		if !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("the cut-off holder's in-flight Apply: %v, want ErrLeaseHeld", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held unit never returned")
	}
	if got, want := rows(t, "SELECT id, v FROM nf.t ORDER BY id"), "1,successor-1"; got != want {
		t.Fatalf("target rows %q, want %q: the cut-off holder's unit committed after the successor started", got, want)
	}
}
