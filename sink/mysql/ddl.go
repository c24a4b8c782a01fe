package mysql

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	"github.com/hamal-replication/hamal/retry"
)

// applyDDL runs a DDL Txn on a connection of its own whose default schema
// is the one the statement ran in on the source, so pooled connections
// never change database. Errors that mean "already done" are tolerated on
// replay and logged. The lease proof runs on that connection right
// before the statement. Every cached table description is dropped afterwards.
func (s *Sink) applyDDL(txn *event.Txn) error {
	pos := txn.Pos.String()
	if txn.DDL == nil || strings.TrimSpace(txn.DDL.Statement) == "" {
		return errors.New("apply DDL: Txn of kind ddl without a statement")
	}
	stmt := txn.DDL.Statement
	if s.cfg.Site != "" && len(txn.Path) > 0 {
		// A DDL commits on its own, with no transaction to hold a marker
		// row: the path rides in a leading comment, which the binlog keeps.
		stmt = loopguard.Comment(txn.Path) + stmt
	}
	defer s.forgetAll()
	// DDL is not interrupted by ctx: a half-sent ALTER gains nothing, and
	// the server would go on with it anyway.
	ctx := context.Background()
	c, err := s.dial(ctx, txn.DDL.Schema)
	if err != nil && txn.DDL.Schema != "" && serverCode(err) == erBadDB {
		// The statement's default schema is gone on the target (a replayed
		// DROP DATABASE, or a CREATE DATABASE issued from it): run it
		// without one; names it needs are qualified or it fails loudly.
		c, err = s.dial(ctx, "")
	}
	if err != nil {
		return s.ddlError(stmt, err)
	}
	defer c.Close()
	if err := s.initSession(c, false); err != nil {
		return s.ddlError(stmt, err)
	}
	if m := txn.DDL.SQLMode; m != "" {
		// The statement reads as it was written: its quoting and escaping
		// flags join the sink's own mode on this connection only.
		if !sqlModeFlags.MatchString(m) {
			return fmt.Errorf("apply DDL: sql_mode flags %q are not a list of sql_mode names", m)
		}
		if _, err := c.Execute("SET SESSION sql_mode='" + sqlMode + "," + m + "'"); err != nil {
			return s.ddlError(stmt, err)
		}
	}
	// The lease proof, right before the statement: a DDL commits on its
	// own, so it cannot share a transaction with it.
	if _, err := c.Execute(string(s.lease.appendProof(nil))); err != nil {
		if serverCode(err) == erWrongValueForVar {
			err = s.lease.proofFailed(c)
		}
		return s.ddlError(stmt, err)
	}
	if _, err := c.Execute(stmt); err != nil {
		if code := serverCode(err); ddlReplayTolerated(code, stmt) {
			s.log.Warn("DDL already applied on the target; skipped (replay)",
				"pos", pos, "schema", txn.DDL.Schema, "statement", shorten(stmt), "err", err)
			return nil
		}
		return s.ddlError(stmt, err)
	}
	s.log.Info("applied DDL", "pos", pos, "schema", txn.DDL.Schema, "statement", shorten(stmt))
	return nil
}

// sqlModeFlags is what event.DDL.SQLMode may hold.
var sqlModeFlags = regexp.MustCompile(`^[A-Z_]+(?:,[A-Z_]+)*$`)

func (s *Sink) ddlError(stmt string, err error) error {
	err = fmt.Errorf("apply DDL (%s): %w", shorten(stmt), err)
	code := serverCode(err)
	switch {
	case code == erAccessDenied || code == erBadDB || errors.Is(err, ErrLeaseHeld):
		return err
	case retry.IsTransient(err):
		return err
	case code == 0:
		return retry.Transient(err) // could not reach the target
	case classify(err) != classFatal:
		return retry.Transient(err)
	}
	return err
}

// ddlReplayTolerated reports whether error code means the DDL was already
// applied: the object to create exists, or the object to drop is gone.
func ddlReplayTolerated(code uint16, stmt string) bool {
	switch code {
	case erTableExists, erDupFieldName, erDupKeyName, erBadTable, erCantDropFieldOrKey,
		erDBCreateExists, erDBDropExists:
		return true
	case erNoSuchTable:
		switch firstKeyword(stmt) {
		case "RENAME", "DROP":
			return true
		}
	}
	return false
}

// firstKeyword returns the first word of stmt in upper case, skipping
// leading blanks and comments.
func firstKeyword(stmt string) string {
	s := stmt
	for {
		s = strings.TrimLeft(s, " \t\r\n;")
		switch {
		case strings.HasPrefix(s, "/*"):
			end := strings.Index(s, "*/")
			if end < 0 {
				return ""
			}
			s = s[end+2:]
		case strings.HasPrefix(s, "#"), strings.HasPrefix(s, "-- "):
			end := strings.IndexByte(s, '\n')
			if end < 0 {
				return ""
			}
			s = s[end+1:]
		default:
			end := strings.IndexFunc(s, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_')
			})
			if end < 0 {
				end = len(s)
			}
			return strings.ToUpper(s[:end])
		}
	}
}

func shorten(stmt string) string {
	stmt = strings.Join(strings.Fields(stmt), " ")
	if len(stmt) > 200 {
		return stmt[:200] + "…"
	}
	return stmt
}
