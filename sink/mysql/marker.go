package mysql

import (
	"fmt"
	"strconv"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/sink"
)

// The origin marker (DESIGN.md, "Loop guard"): with Config.Site set, every
// target transaction starts by upserting its row of <hamal>.origin_marker,
// one row per (channel, worker) so concurrent workers never wait on each
// other, with the path of the batch's Txns. The source of the next hop reads
// the row back from the binlog and so knows where the transaction came
// from. The counter n changes on every write, so the row event is logged
// even when origin and path are the same as last time (ROW format logs
// nothing for an update that changes no value). The marker is the first
// statement, so a reader that splits a huge transaction still meets it
// before any data row.

func (s *Sink) markerTable() string {
	return quoteIdent(s.cfg.HamalSchema) + ".origin_marker"
}

// setupMarker creates the marker schema and Hamal's tables in it (marker,
// conflicts, unsynced, the replay fence) when missing.
func (s *Sink) setupMarker(c *client.Conn) error {
	stmts := []string{
		"CREATE DATABASE IF NOT EXISTS " + quoteIdent(s.cfg.HamalSchema) + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		"CREATE TABLE IF NOT EXISTS " + s.markerTable() + ` (
  channel VARCHAR(64) NOT NULL,
  worker INT NOT NULL,
  origin VARCHAR(32) NOT NULL,
  path VARCHAR(1024) NOT NULL,
  n BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (channel, worker)
)` + hamalTableOptions,
		"CREATE TABLE IF NOT EXISTS " + s.conflictsTable() + conflictsDDL,
		"CREATE TABLE IF NOT EXISTS " + s.unsyncedTable() + unsyncedDDL,
		"CREATE TABLE IF NOT EXISTS " + s.appliedTable() + appliedDDL,
	}
	for _, q := range stmts {
		if _, err := c.Execute(q); err != nil {
			return fmt.Errorf("mysql sink: create the origin marker table %s on %s (sink.site is set, so the sink user needs CREATE, INSERT and UPDATE on %s.*): %w",
				s.markerTable(), s.cfg.Addr, s.cfg.HamalSchema, err)
		}
	}
	return s.convertHamalTables(c)
}

// hamalTableOptions ends the DDL of every table Hamal creates: its charset
// is stated, never the server's default (latin1 on many servers), so
// images and keys of any text can be recorded.
const hamalTableOptions = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

// convertHamalTables converts Hamal's tables that an older version created
// in the server's default charset to utf8mb4 (lossless: every charset
// converts to it), so a conflict on non-Latin text can be recorded.
func (s *Sink) convertHamalTables(c *client.Conn) error {
	r, err := c.Execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=" + quoteString(s.cfg.HamalSchema) +
		" AND TABLE_NAME IN ('origin_marker','conflicts','unsynced','applied') AND TABLE_COLLATION <> 'utf8mb4_bin'")
	if err != nil {
		return fmt.Errorf("mysql sink: read the charset of Hamal's tables in %s on %s: %w", s.cfg.HamalSchema, s.cfg.Addr, err)
	}
	// conflicts.kind (conflict, foreign-write) came after the first version.
	k, err := c.Execute("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=" + quoteString(s.cfg.HamalSchema) +
		" AND TABLE_NAME='conflicts' AND COLUMN_NAME='kind'")
	if err != nil {
		return fmt.Errorf("mysql sink: read the columns of %s on %s: %w", s.conflictsTable(), s.cfg.Addr, err)
	}
	if n, _ := k.GetInt(0, 0); n == 0 {
		if _, err := c.Execute("ALTER TABLE " + s.conflictsTable() + " ADD COLUMN kind VARCHAR(20) NOT NULL DEFAULT 'conflict' AFTER id"); err != nil {
			return fmt.Errorf("mysql sink: add column kind to %s on %s (the sink user needs ALTER on %s.*): %w", s.conflictsTable(), s.cfg.Addr, s.cfg.HamalSchema, err)
		}
	}
	for i := range r.Values {
		name, _ := r.GetString(i, 0)
		t := quoteIdent(s.cfg.HamalSchema) + "." + quoteIdent(name)
		s.log.Info("converting Hamal's table to utf8mb4", "table", s.cfg.HamalSchema+"."+name)
		if _, err := c.Execute("ALTER TABLE " + t + " CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			return fmt.Errorf("mysql sink: convert %s to utf8mb4 on %s (the sink user needs ALTER on %s.*): %w", t, s.cfg.Addr, s.cfg.HamalSchema, err)
		}
	}
	return nil
}

// appendMarker appends the marker upsert of a unit.
func (a *applier) appendMarker(b []byte, m sink.Marker) []byte {
	s := a.s
	b = append(b, "INSERT INTO "...)
	b = append(b, s.markerTable()...)
	b = append(b, " (channel,worker,origin,path,n) VALUES ("...)
	b = append(b, s.quotedChannel...)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(a.slot.id), 10)
	b = append(b, ',')
	b = append(b, quoteString(m.Origin)...)
	b = append(b, ',')
	b = append(b, quoteString(m.PathText())...)
	b = append(b, ",1) ON DUPLICATE KEY UPDATE origin=VALUES(origin),path=VALUES(path),n=n+1"...)
	return b
}
