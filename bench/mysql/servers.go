package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hamal-replication/hamal/test/harness"
)

// targetArgs are the settings every target runs with, whichever contender
// applies to it: durable commits, binlog on, replica updates logged, and
// MariaDB's own default redo log size (96 MiB) instead of the 16 MiB the
// test harness starts its servers with: with 16 MiB, a write-heavy
// catch-up on the 1M-row table spends its time flushing pages to free
// redo space (in one run the target's CPU per W2 transaction rose from 88
// to 127 µs for hamal, and native optimistic went from 2,959 to 2,532
// txn/s). BENCH_TARGET_ARGS adds mariadbd flags to every target.
var targetArgs = append([]string{
	"--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1", "--log-slave-updates=ON",
	"--innodb-buffer-pool-size=1G", "--max-allowed-packet=64M", "--innodb-log-file-size=96M",
}, strings.Fields(os.Getenv("BENCH_TARGET_ARGS"))...)

// sourceArgs trade durability for speed: the source only has to produce
// the binlog the contenders read; it is never what is timed.
var sourceArgs = []string{
	"--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0",
	"--innodb-buffer-pool-size=1G", "--max-allowed-packet=64M",
}

// servers starts and removes the bench's MariaDB instances under one
// directory.
type servers struct {
	dir    string
	nextID int
	live   map[*harness.Server]bool
}

func newServers(parent string) (*servers, error) {
	dir, err := os.MkdirTemp(parent, "hamal-bench-")
	if err != nil {
		return nil, err
	}
	return &servers{dir: dir, nextID: 1, live: map[*harness.Server]bool{}}, nil
}

func (s *servers) start(args []string) (*harness.Server, error) {
	id := s.nextID
	s.nextID++
	srv, err := harness.StartMariaDB(harness.Options{ServerID: id, Dir: filepath.Join(s.dir, "s"+strconv.Itoa(id)), Args: args})
	if err != nil {
		return nil, err
	}
	s.live[srv] = true
	return srv, nil
}

// target starts a fresh target: empty binlog, the bench database and
// the given tables created (not logged).
func (s *servers) target(tables ...string) (*harness.Server, error) {
	t, err := s.start(targetArgs)
	if err != nil {
		return nil, err
	}
	stmts := []string{"RESET MASTER", "SET sql_log_bin=0", "CREATE DATABASE IF NOT EXISTS bench"}
	for _, tbl := range tables {
		stmts = append(stmts, createTable(tbl))
	}
	if err := execOne(t, stmts...); err != nil {
		s.remove(t)
		return nil, err
	}
	return t, nil
}

func (s *servers) remove(srv *harness.Server) {
	if srv == nil || !s.live[srv] {
		return
	}
	delete(s.live, srv)
	_ = srv.Remove()
}

func (s *servers) cleanup() {
	for srv := range s.live {
		_ = srv.Remove()
	}
	_ = os.RemoveAll(s.dir)
}

// execOne runs statements on one connection, so session settings such as
// sql_log_bin hold for the statements after them.
func execOne(srv *harness.Server, stmts ...string) error {
	c, err := srv.Connect("")
	if err != nil {
		return err
	}
	defer c.Close()
	for _, q := range stmts {
		if _, err := c.Execute(q); err != nil {
			return fmt.Errorf("%s on %s: %w", truncate(q, 120), srv.Addr, err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// gtidSeq returns the sequence number of domain's GTID in a MariaDB GTID
// position such as "1-1-4711,2-2-9".
func gtidSeq(pos string, domain int) uint64 {
	for _, part := range strings.Split(pos, ",") {
		f := strings.Split(strings.TrimSpace(part), "-")
		if len(f) == 3 && f[0] == strconv.Itoa(domain) {
			n, _ := strconv.ParseUint(f[2], 10, 64)
			return n
		}
	}
	return 0
}

// binlogBytes sums the sizes of the server's binary logs.
func binlogBytes(srv *harness.Server) (int64, error) {
	if err := srv.Exec("FLUSH BINARY LOGS"); err != nil {
		return 0, err
	}
	rows, err := srv.Query("SHOW BINARY LOGS")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, r := range rows {
		n, _ := strconv.ParseInt(r[1], 10, 64)
		total += n
	}
	return total, nil
}

// native makes target a MariaDB replica of the source at masterAddr,
// starting after startPos and stopping at endPos (none when empty), with
// threads parallel workers (0: serial).
func native(target *harness.Server, masterAddr, startPos, endPos string, threads int) error {
	host, port, _ := strings.Cut(masterAddr, ":")
	start := "START SLAVE"
	if endPos != "" {
		start += " UNTIL master_gtid_pos='" + endPos + "'"
	}
	return execOne(target,
		"SET GLOBAL gtid_slave_pos='"+startPos+"'",
		fmt.Sprintf("SET GLOBAL slave_parallel_threads=%d", threads),
		"SET GLOBAL slave_parallel_mode='optimistic'",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%s, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos", host, port),
		start)
}

// waitNative blocks until the replica has applied endPos, failing when its
// SQL or IO thread stops with an error.
func waitNative(target *harness.Server, endPos string, timeout time.Duration) error {
	c, err := target.Connect("")
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		r, err := c.Execute("SELECT MASTER_GTID_WAIT('" + endPos + "', 1)")
		if err != nil {
			return err
		}
		v, _ := r.GetInt(0, 0)
		if v == 0 {
			return nil
		}
		st, err := c.Execute("SHOW SLAVE STATUS")
		if err != nil {
			return err
		}
		for _, name := range []string{"Last_SQL_Error", "Last_IO_Error"} {
			if msg, _ := st.GetStringByName(0, name); msg != "" {
				return fmt.Errorf("native replica on %s: %s: %s", target.Addr, name, msg)
			}
		}
	}
	return fmt.Errorf("native replica on %s did not reach %s within %s", target.Addr, endPos, timeout)
}

func stopNative(target *harness.Server) { _ = target.Exec("STOP SLAVE") }
