package mysql

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/hamal-replication/hamal/retry"
)

// heartbeatTable is the table the HeartbeatWriter keeps fresh on the
// source, pt-heartbeat style: one row per source server_id with the UTC
// time of the last write. Its changes come back through the binlog like any
// row, so the time they take to reach the applier is the true lag, also
// while no application writes anything. Being in Hamal's schema, the rows
// are never forwarded as data.
const heartbeatTable = "heartbeat"

// DefaultHeartbeatInterval is how often the HeartbeatWriter writes.
const DefaultHeartbeatInterval = time.Second

// heartbeatDDL creates the schema and table on first use. TIMESTAMP(6) is
// stored in UTC; the writer's session runs with time_zone='+00:00' and the
// reader decodes TIMESTAMP in UTC, so no time zone is ever involved.
func heartbeatDDL(schema string) []string {
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + "`" + schema + "`" + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		"CREATE TABLE IF NOT EXISTS " + "`" + schema + "`" + "." + heartbeatTable +
			" (server_id INT UNSIGNED NOT NULL PRIMARY KEY, ts TIMESTAMP(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	}
}

// hamalSchemaOf is cfg.HamalSchema or its default.
func hamalSchemaOf(cfg Config) string {
	if cfg.HamalSchema == "" {
		return defaultHamalSchema
	}
	return cfg.HamalSchema
}

// HeartbeatWriter writes hamal.heartbeat on the source every Interval.
type HeartbeatWriter struct {
	cfg      Config
	interval time.Duration
	log      *slog.Logger
}

// NewHeartbeatWriter returns a writer that connects with cfg's address and
// credentials (the user needs CREATE, INSERT and DELETE on hamal.*).
// interval <= 0 means DefaultHeartbeatInterval.
func NewHeartbeatWriter(cfg Config, interval time.Duration) *HeartbeatWriter {
	if interval <= 0 {
		interval = DefaultHeartbeatInterval
	}
	return &HeartbeatWriter{cfg: cfg, interval: interval,
		log: cfgLogger(cfg).With("component", "source/mysql/heartbeat", "addr", cfg.Addr)}
}

// Run writes until ctx is done. A failed write (source down, read-only
// after a failover) is logged and retried with backoff: lag then grows on
// the dashboards, which is what an operator should see. Run returns nil
// when ctx is done.
func (w *HeartbeatWriter) Run(ctx context.Context) error {
	var backoff retry.Backoff
	var conn *client.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	failures := 0
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		err := w.beat(ctx, &conn)
		if err == nil {
			if failures > 0 {
				w.log.Info("heartbeat writes resumed", "after_failures", failures)
			}
			failures = 0
			backoff.Reset()
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if conn != nil {
			conn.Close()
			conn = nil
		}
		failures++
		if failures == 1 || failures%60 == 0 {
			w.log.Warn("cannot write the source heartbeat; heartbeat lag will grow until it succeeds", "failures", failures, "err", err)
		}
		if err := backoff.Sleep(ctx); err != nil {
			return nil
		}
	}
}

// beat writes one heartbeat, connecting and creating the table if needed.
func (w *HeartbeatWriter) beat(ctx context.Context, conn **client.Conn) error {
	if *conn == nil {
		c, err := connect(ctx, w.cfg)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		for _, q := range append([]string{"SET time_zone='+00:00'"}, heartbeatDDL(hamalSchemaOf(w.cfg))...) {
			if _, err := c.Execute(q); err != nil {
				c.Close()
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		*conn = c
	}
	schema := hamalSchemaOf(w.cfg)
	if _, err := (*conn).Execute("REPLACE INTO " + "`" + schema + "`" + "." + heartbeatTable +
		" (server_id, ts) VALUES (@@server_id, UTC_TIMESTAMP(6))"); err != nil {
		return fmt.Errorf("write %s.%s: %w", schema, heartbeatTable, err)
	}
	return nil
}

// noteHeartbeatTable marks the table entry of hamal.heartbeat, so rows
// can read its "ts" column.
func noteHeartbeatTable(ent *tableEntry, hamal, schema, name string) {
	if strings.ToLower(schema) != hamal || name != heartbeatTable {
		return
	}
	for i, c := range ent.tm.ColumnNameString() {
		if c == "ts" {
			ent.heartbeatCol = i + 1
		}
	}
}

// noteHeartbeatRows keeps the newest heartbeat time of a rows event on
// hamal.heartbeat in the group being assembled.
func (r *Reader) noteHeartbeatRows(ent *tableEntry, e *replication.RowsEvent) {
	if ent.heartbeatCol == 0 || e.Type() == replication.EnumRowsEventTypeDelete {
		return
	}
	col := ent.heartbeatCol - 1
	for _, row := range e.Rows {
		if col >= len(row) {
			continue
		}
		if ts, ok := parseHeartbeatTime(row[col]); ok && ts.After(r.grp.heartbeat) {
			r.grp.heartbeat = ts
		}
	}
}

// parseHeartbeatTime reads a TIMESTAMP(6) value as go-mysql decodes it
// (a string in UTC, see TestValueContract).
func parseHeartbeatTime(v any) (time.Time, bool) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return time.Time{}, false
	}
	ts, err := time.ParseInLocation("2006-01-02 15:04:05.999999", s, time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	return ts, true
}
