package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// SnapshotPosition returns a binlog position P such that every read
// started on the source after SnapshotPosition returns sees every
// transaction up to P, and the binlog after P holds every transaction it
// may not see. A copy that reads only after taking P, followed by a stream
// from P with replay-safe statements, therefore loses nothing and doubles
// nothing.
//
// MariaDB: P is exactly the binlog position of a consistent snapshot
// (START TRANSACTION WITH CONSISTENT SNAPSHOT, then the session's
// binlog_snapshot_file and binlog_snapshot_position, mapped to a GTID
// position with BINLOG_GTID_POS): no lock, no privilege beyond connecting.
// @@gtid_binlog_pos alone would not do: a transaction is in the binlog
// (and that variable) a moment before its rows are visible, and a copy
// reading in that moment would miss rows the stream never sends.
//
// MySQL has no binlog_snapshot_* variables: P is read under FLUSH TABLES
// WITH READ LOCK (held for the two reads, with lock_wait_timeout 10 s), which
// waits for commits in flight, so the user needs RELOAD. Hamal's tests run
// MariaDB only; this path is not exercised here.
func SnapshotPosition(ctx context.Context, cfg Config) (Position, error) {
	conn, err := connect(ctx, cfg)
	if err != nil {
		return Position{}, fmt.Errorf("snapshot position: connect to %s: %w", cfg.Addr, err)
	}
	defer conn.Close()
	r, err := conn.Execute("SELECT VERSION()")
	if err != nil {
		return Position{}, fmt.Errorf("snapshot position: %w", err)
	}
	version, _ := r.GetString(0, 0)
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return mariadbSnapshotPosition(conn)
	}
	return mysqlSnapshotPosition(conn)
}

func mariadbSnapshotPosition(conn *client.Conn) (Position, error) {
	if _, err := conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		return Position{}, fmt.Errorf("snapshot position: start a consistent snapshot: %w", err)
	}
	defer conn.Execute("COMMIT") // read-only; the connection is closed next anyway
	r, err := conn.Execute("SHOW SESSION STATUS WHERE Variable_name IN ('binlog_snapshot_file', 'binlog_snapshot_position')")
	if err != nil {
		return Position{}, fmt.Errorf("snapshot position: read binlog_snapshot_file/position: %w", err)
	}
	var p Position
	for i := 0; i < r.RowNumber(); i++ {
		name, _ := r.GetString(i, 0)
		switch strings.ToLower(name) {
		case "binlog_snapshot_file":
			p.File, _ = r.GetString(i, 1)
		case "binlog_snapshot_position":
			n, _ := r.GetUint(i, 1)
			p.Pos = uint32(n)
		}
	}
	if p.File == "" {
		return Position{}, errors.New("snapshot position: the source reports no binlog_snapshot_file: is log_bin on?")
	}
	r, err = conn.Execute(fmt.Sprintf("SELECT BINLOG_GTID_POS(%s, %d)", quoteString(p.File), p.Pos))
	if err != nil {
		return Position{}, fmt.Errorf("snapshot position: BINLOG_GTID_POS(%s, %d): %w", p.File, p.Pos, err)
	}
	if null, _ := r.IsNull(0, 0); null {
		return Position{}, fmt.Errorf("snapshot position: BINLOG_GTID_POS(%s, %d) is NULL: the source cannot map its snapshot position to a GTID position", p.File, p.Pos)
	}
	g, _ := r.GetString(0, 0)
	set, err := gomysql.ParseMariadbGTIDSet(g)
	if err != nil {
		return Position{}, fmt.Errorf("snapshot position: parse GTID position %q: %w", g, err)
	}
	p.GTID = formatGTIDSet(set)
	return p, nil
}

func mysqlSnapshotPosition(conn *client.Conn) (Position, error) {
	if _, err := conn.Execute("SET SESSION lock_wait_timeout = 10"); err != nil {
		return Position{}, fmt.Errorf("snapshot position: %w", err)
	}
	if _, err := conn.Execute("FLUSH TABLES WITH READ LOCK"); err != nil {
		return Position{}, fmt.Errorf("snapshot position: FLUSH TABLES WITH READ LOCK (MySQL has no lock-free consistent position; source.user needs RELOAD): %w", err)
	}
	defer conn.Execute("UNLOCK TABLES") // closing the connection next would release it too
	file, pos, err := masterStatus(conn)
	if err != nil {
		return Position{}, fmt.Errorf("snapshot position: %w", err)
	}
	p := Position{File: file, Pos: pos}
	vars, err := globalVariables(conn, "gtid_mode", "gtid_executed")
	if err != nil {
		return Position{}, fmt.Errorf("snapshot position: %w", err)
	}
	if strings.HasPrefix(strings.ToUpper(vars["gtid_mode"]), "ON") {
		p.GTID = strings.ReplaceAll(strings.TrimSpace(vars["gtid_executed"]), "\n", "")
	}
	return p, nil
}
