package mysql

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// Start values that name a place in the binlog (a GTID position or
// file:pos) are checked against the source before streaming, and again
// to explain a refused dump (ERROR 1236): the source can serve a position
// only if it reached it and still has the binlog after it. What the
// server says on its own is often misleading ("not in the master's binlog"
// for a position ahead of it, whose message reads like a purge), and a GTID
// in a domain the source lacks is accepted silently, replaying the
// source's whole binlog.

// ErrPositionAhead is matched (errors.Is) by the fatal error for a start
// or resume position the source never reached: ahead of its newest
// transaction, in a GTID domain or server it does not have, or beyond the
// end of its binlog.
var ErrPositionAhead = errors.New("position is not in the source's binlog history")

// PositionError is the fatal error for a start or resume position the
// source cannot serve. It matches ErrPositionPurged when the binlog the
// position needs was purged, ErrPositionAhead otherwise.
type PositionError struct {
	Pos     Position
	Problem Problem
	Purged  bool
	Cause   error // the server's error, when it refused the dump
}

// PurgedError is the fatal error for a position whose binlog was purged.
type PurgedError = PositionError

func (e *PositionError) Error() string {
	s := fmt.Sprintf("cannot stream from %s: %s; fix: %s", e.Pos, e.Problem.What, e.Problem.Fix)
	if e.Cause != nil {
		s += " (server said: " + e.Cause.Error() + ")"
	}
	return s
}

// Is matches ErrPositionPurged or ErrPositionAhead.
func (e *PositionError) Is(target error) bool {
	return target == ErrPositionPurged && e.Purged || target == ErrPositionAhead && !e.Purged
}

// Unwrap returns the server's error.
func (e *PositionError) Unwrap() error { return e.Cause }

// CheckStart reports the problems of cfg.Start against the source: a
// GTID position ahead of the source, in a domain it lacks, or after a
// purge; a file:pos beyond the end of the binlog or in a
// purged file. "current", "earliest" and "snapshot" have none. hamal check
// calls it for a channel without a checkpoint (a checkpoint wins over
// source.start); Open runs the same check at a first start.
func CheckStart(ctx context.Context, cfg Config) ([]Problem, error) {
	spec, err := parseStart(cfg.Start)
	if err != nil {
		return nil, nil // reported by Preflight
	}
	if spec.kind != "gtid" && spec.kind != "filepos" {
		return nil, nil
	}
	conn, err := connect(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("check source.start: connect to %s: %w", cfg.Addr, err)
	}
	defer conn.Close()
	p, err := checkPosition(conn, startPosition(spec), "source.start")
	if err != nil || p == nil {
		return nil, err
	}
	return []Problem{p.Problem}, nil
}

func startPosition(spec startSpec) Position {
	if spec.kind == "gtid" {
		return Position{GTID: spec.gtid}
	}
	return Position{File: spec.file, Pos: spec.pos}
}

// checkPosition returns why the source cannot stream from pos (what names
// the setting in messages: "source.start" or "the checkpoint"), or nil.
func checkPosition(conn *client.Conn, pos Position, what string) (*PositionError, error) {
	if pos.GTID != "" {
		r, err := conn.Execute("SELECT VERSION()")
		if err != nil {
			return nil, err
		}
		v, _ := r.GetString(0, 0)
		if strings.Contains(strings.ToLower(v), "mariadb") {
			return checkMariaDBGTID(conn, pos, what)
		}
		return checkMySQLGTID(conn, pos, what)
	}
	if pos.File != "" {
		return checkFilePos(conn, pos, what)
	}
	return nil, nil
}

// fromDump is the fix that names where a good position comes from.
const fromDump = "set source.start to snapshot to copy what the source holds now, " +
	"or to the position of the dump the target was seeded from (README: Start from a dump)"

// domainSeqs maps each GTID domain to its position's GTID.
func domainSeqs(set *gomysql.MariadbGTIDSet) map[uint32]*gomysql.MariadbGTID {
	out := make(map[uint32]*gomysql.MariadbGTID, len(set.Sets))
	for d, g := range set.Sets {
		out[d] = g
	}
	return out
}

func gtidText(g *gomysql.MariadbGTID) string {
	return fmt.Sprintf("%d-%d-%d", g.DomainID, g.ServerID, g.SequenceNumber)
}

func sortedDomains(m map[uint32]*gomysql.MariadbGTID) []uint32 {
	ds := make([]uint32, 0, len(m))
	for d := range m {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

func checkMariaDBGTID(conn *client.Conn, pos Position, what string) (*PositionError, error) {
	fail := func(purged bool, w, fix string) (*PositionError, error) {
		return &PositionError{Pos: pos, Purged: purged, Problem: Problem{What: w, Fix: fix}}, nil
	}
	parsed, err := gomysql.ParseMariadbGTIDSet(pos.GTID)
	if err != nil {
		return fail(false, fmt.Sprintf("%s %q is not a MariaDB GTID position", what, pos.GTID), "use domain-server-seq, e.g. 0-1-100")
	}
	want := domainSeqs(parsed.(*gomysql.MariadbGTIDSet))
	cur, err := queryString(conn, "SELECT @@GLOBAL.gtid_binlog_pos")
	if err != nil {
		return nil, fmt.Errorf("read gtid_binlog_pos: %w", err)
	}
	curSet, err := gomysql.ParseMariadbGTIDSet(cur)
	if err != nil {
		return nil, fmt.Errorf("parse gtid_binlog_pos %q: %w", cur, err)
	}
	have := domainSeqs(curSet.(*gomysql.MariadbGTIDSet))
	// The GTID position at the start of the oldest binlog: a position
	// behind it needs transactions that were purged.
	oldest := map[uint32]*gomysql.MariadbGTID{}
	var oldestFile string
	if r, err := conn.Execute("SHOW BINARY LOGS"); err == nil && r.RowNumber() > 0 {
		oldestFile, _ = r.GetString(0, 0)
		if g, err := queryString(conn, fmt.Sprintf("SELECT IFNULL(BINLOG_GTID_POS(%s, 4), '')", quoteString(oldestFile))); err == nil {
			if set, err := gomysql.ParseMariadbGTIDSet(g); err == nil {
				oldest = domainSeqs(set.(*gomysql.MariadbGTIDSet))
			}
		}
	}
	for _, d := range sortedDomains(want) {
		w := want[d]
		h, ok := have[d]
		switch {
		case !ok:
			return fail(false, fmt.Sprintf("%s %s is in GTID domain %d, which the source does not have (the source's position is %q)", what, gtidText(w), d, cur),
				fmt.Sprintf("use a position in the source's domains (%s), as a dump of this source records it (README: Start from a dump); or set source.start to snapshot to copy what the source holds now", domainList(have)))
		case w.SequenceNumber > h.SequenceNumber:
			return fail(false, fmt.Sprintf("%s %s is ahead of the source, whose newest transaction in domain %d is %s: the position comes from another server (the target's own, or a newer source)", what, gtidText(w), d, gtidText(h)),
				"take the position from this source: "+fromDump)
		}
		if o, ok := oldest[d]; ok && w.SequenceNumber < o.SequenceNumber {
			return fail(true, fmt.Sprintf("%s %s needs domain %d's transactions after seq %d, but the source purged them: its oldest binlog %s starts after %s", what, gtidText(w), d, w.SequenceNumber, oldestFile, gtidText(o)),
				"set source.start to snapshot to copy what the source holds now, or restore the purged binlogs on the source")
		}
	}
	return nil, nil
}

func domainList(m map[uint32]*gomysql.MariadbGTID) string {
	var parts []string
	for _, d := range sortedDomains(m) {
		parts = append(parts, fmt.Sprintf("domain %d at %s", d, gtidText(m[d])))
	}
	if len(parts) == 0 {
		return "none: the source has logged no GTID yet"
	}
	return strings.Join(parts, ", ")
}

func checkMySQLGTID(conn *client.Conn, pos Position, what string) (*PositionError, error) {
	fail := func(purged bool, w, fix string) (*PositionError, error) {
		return &PositionError{Pos: pos, Purged: purged, Problem: Problem{What: w, Fix: fix}}, nil
	}
	want, err := gomysql.ParseMysqlGTIDSet(pos.GTID)
	if err != nil {
		return fail(false, fmt.Sprintf("%s %q is not a MySQL GTID set", what, pos.GTID), "use uuid:interval, e.g. 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")
	}
	vars, err := globalVariables(conn, "gtid_executed", "gtid_purged")
	if err != nil {
		return nil, err
	}
	executed, err := gomysql.ParseMysqlGTIDSet(strings.ReplaceAll(vars["gtid_executed"], "\n", ""))
	if err != nil {
		return nil, fmt.Errorf("parse gtid_executed: %w", err)
	}
	purged, err := gomysql.ParseMysqlGTIDSet(strings.ReplaceAll(vars["gtid_purged"], "\n", ""))
	if err != nil {
		return nil, fmt.Errorf("parse gtid_purged: %w", err)
	}
	ws, es := *want.(*gomysql.MysqlGTIDSet), *executed.(*gomysql.MysqlGTIDSet)
	for sid := range ws {
		if _, ok := es[sid]; !ok {
			return fail(false, fmt.Sprintf("%s names server %s, which never wrote to the source (gtid_executed is %q)", what, sid, executed.String()),
				"use a GTID set of this source's history, as a dump of this source records it (README: Start from a dump); or set source.start to snapshot to copy what the source holds now")
		}
	}
	if !executed.Contain(want) {
		return fail(false, fmt.Sprintf("%s %q is ahead of the source, whose gtid_executed is %q: the set comes from another server", what, pos.GTID, executed.String()),
			"take the set from this source: "+fromDump)
	}
	if !want.Contain(purged) {
		return fail(true, fmt.Sprintf("%s %q lacks transactions the source purged (gtid_purged is %q)", what, pos.GTID, purged.String()),
			"set source.start to snapshot to copy what the source holds now, or restore the purged binlogs on the source")
	}
	return nil, nil
}

func checkFilePos(conn *client.Conn, pos Position, what string) (*PositionError, error) {
	fail := func(purged bool, w, fix string) (*PositionError, error) {
		return &PositionError{Pos: pos, Purged: purged, Problem: Problem{What: w, Fix: fix}}, nil
	}
	r, err := conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("show binary logs: %w", err)
	}
	if r.RowNumber() == 0 {
		return fail(false, what+" names a binlog file, but the source lists none", "turn on log_bin on the source")
	}
	type log struct {
		name string
		size uint64
	}
	logs := make([]log, r.RowNumber())
	for i := range logs {
		logs[i].name, _ = r.GetString(i, 0)
		logs[i].size, _ = r.GetUint(i, 1)
	}
	first, last := logs[0], logs[len(logs)-1]
	for _, l := range logs {
		if l.name != pos.File {
			continue
		}
		if uint64(pos.Pos) > l.size {
			return fail(false, fmt.Sprintf("%s %s:%d is beyond the end of %s, which is %d bytes", what, pos.File, pos.Pos, l.name, l.size),
				fmt.Sprintf("use a position inside the binlog (it ends at %s:%d); or %s", last.name, last.size, fromDump))
		}
		if pos.Pos < 4 {
			return fail(false, fmt.Sprintf("%s %s:%d is before the first event of the file (offset 4)", what, pos.File, pos.Pos), "use an offset of 4 or more")
		}
		return nil, nil
	}
	if binlogIndexLess(pos.File, first.name) {
		return fail(true, fmt.Sprintf("%s %s:%d is in a binlog the source purged: its oldest is %s", what, pos.File, pos.Pos, first.name),
			"set source.start to snapshot to copy what the source holds now, or restore the purged binlogs on the source")
	}
	return fail(false, fmt.Sprintf("%s %s:%d names a binlog the source does not have (it has %s to %s, ending at %s:%d)", what, pos.File, pos.Pos, first.name, last.name, last.name, last.size),
		fmt.Sprintf("use a file the source lists in SHOW BINARY LOGS; or %s", fromDump))
}

// binlogIndexLess orders binlog names by their numeric suffix
// (bin.000009 < bin.000010), names of another base by text.
func binlogIndexLess(a, b string) bool {
	ai, bi := strings.LastIndexByte(a, '.'), strings.LastIndexByte(b, '.')
	if ai > 0 && bi > 0 && a[:ai] == b[:bi] {
		x, err1 := strconv.ParseUint(a[ai+1:], 10, 64)
		y, err2 := strconv.ParseUint(b[bi+1:], 10, 64)
		if err1 == nil && err2 == nil {
			return x < y
		}
	}
	return a < b
}

// refusedPosition explains the source refusing to stream from the start
// position (ERROR 1236): the check above names the real cause (ahead,
// unknown domain or server, purged, beyond the end); when it finds none,
// the server's own words are kept and a purge is assumed only if they
// speak of one.
func (r *Reader) refusedPosition(cause *gomysql.MyError) error {
	what := "source.start"
	if r.resumed {
		what = "the checkpoint"
	}
	r.metaMu.Lock()
	conn := r.meta
	r.metaMu.Unlock()
	var own *client.Conn
	if conn == nil {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		c, err := connect(ctx, r.cfg)
		cancel()
		if err == nil {
			own, conn = c, c
			defer own.Close()
		}
	}
	if conn != nil {
		r.metaMu.Lock()
		pe, err := checkPosition(conn, r.startPos, what)
		r.metaMu.Unlock()
		if err == nil && pe != nil {
			pe.Cause = cause
			return pe
		}
	}
	purged := strings.Contains(strings.ToLower(cause.Message), "purged")
	return &PositionError{Pos: r.startPos, Purged: purged, Cause: cause, Problem: Problem{
		What: "the source refused to stream from " + what,
		Fix:  "check that " + what + " comes from this source; " + fromDump,
	}}
}
