package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hamal-replication/hamal/event"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

type decoded struct {
	events  int64 // Txns plus row changes
	rows    int64
	elapsed time.Duration
}

// decode reads n Txns from start with the source reader alone, no sink.
func decode(ctx context.Context, addr, start string, n uint64) (decoded, error) {
	r, err := srcmysql.Open(ctx, srcmysql.Config{Addr: addr, User: "root", ServerID: benchServerID + 1,
		Start: start, Tables: []string{"bench.*"}, Logger: slog.New(slog.DiscardHandler)}, nil)
	if err != nil {
		return decoded{}, err
	}
	defer r.Close()
	t0 := time.Now()
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
	d.elapsed = time.Since(t0)
	return d, nil
}
