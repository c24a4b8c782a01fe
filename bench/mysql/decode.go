package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/event"
)

type decoded struct {
	events  int64 // Txns plus row changes (bare syncer: binlog events)
	rows    int64
	elapsed time.Duration
	cpu     time.Duration // this process's CPU time meanwhile (the servers are other processes)
	allocs  uint64        // heap allocations meanwhile: unlike time, not skewed by load
}

func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// decode reads n Txns from start with the source reader alone, no sink.
func decode(ctx context.Context, addr, start string, n uint64) (decoded, error) {
	src := benchSource(addr, benchServerID+1, start)
	if err := validated(src, "source"); err != nil {
		return decoded{}, err
	}
	r, err := src.OpenReader(ctx, engine.Env{Channel: "bench-decode", Logger: slog.New(slog.DiscardHandler)}, nil)
	if err != nil {
		return decoded{}, err
	}
	defer r.Close()
	a0, t0, c0 := mallocs(), time.Now(), cpuTime()
	var d decoded
	for seen := uint64(0); seen < n; {
		txn, err := r.Next(ctx)
		if err != nil {
			return decoded{}, fmt.Errorf("decode after %d of %d Txns: %w", seen, n, err)
		}
		if txn.Kind == event.KindHeartbeat {
			continue
		}
		seen++
		d.events += 1 + int64(len(txn.Changes))
		d.rows += int64(len(txn.Changes))
	}
	d.elapsed, d.cpu, d.allocs = time.Since(t0), cpuTime()-c0, mallocs()-a0
	return d, nil
}

// rawSyncer reads n transactions from start with a bare go-mysql
// BinlogSyncer: GetEvent until the commit event of the n-th GTID group,
// nothing else. It is the library's own read-and-parse rate on the same
// binlog, the ceiling for the source reader, with go-mysql's default
// options (event cache, buffers) and the decoding options the reader uses.
func rawSyncer(ctx context.Context, addr, start string, n uint64) (decoded, error) {
	host, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	gset, err := gomysql.ParseMariadbGTIDSet(start)
	if err != nil {
		return decoded{}, fmt.Errorf("raw syncer: start %q: %w", start, err)
	}
	s := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: benchServerID + 2, Flavor: gomysql.MariaDBFlavor, Host: host, Port: uint16(port),
		User: "root", Localhost: "hamal-bench", TimestampStringLocation: time.UTC,
		Logger: slog.New(slog.DiscardHandler),
	})
	defer s.Close()
	st, err := s.StartSyncGTID(gset)
	if err != nil {
		return decoded{}, fmt.Errorf("raw syncer: start dump: %w", err)
	}
	a0, t0, c0 := mallocs(), time.Now(), cpuTime() // like decode: the dump is started, nothing read yet
	var groups uint64
	var d decoded
	for {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			return decoded{}, fmt.Errorf("raw syncer after %d of %d transactions: %w", groups, n, err)
		}
		d.events++
		done := false
		switch e := ev.Event.(type) {
		case *replication.MariadbGTIDEvent:
			groups++
		case *replication.XIDEvent:
			done = groups >= n
		case *replication.QueryEvent:
			done = groups >= n && string(e.Query) == "COMMIT"
		}
		if done {
			d.elapsed, d.cpu, d.allocs = time.Since(t0), cpuTime()-c0, mallocs()-a0
			return d, nil
		}
	}
}
