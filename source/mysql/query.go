package mysql

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
)

// queryKind classifies a QueryEvent's statement.
type queryKind int

const (
	queryDDL      queryKind = iota + 1 // anything that is not below: DDL, GRANT, …
	queryBegin                         // BEGIN, START TRANSACTION, XA START
	queryCommit                        // COMMIT, ROLLBACK, XA PREPARE: ends the group
	queryInGroup                       // SAVEPOINT, ROLLBACK TO, RELEASE, XA END: no effect
	queryDML                           // statement-based DML (binlog_format not ROW for that session)
	queryXAFinish                      // XA COMMIT/ROLLBACK of a prepared transaction
)

func classifyQuery(q string) queryKind {
	s := strings.ToUpper(stripComments(q))
	word := func(w string) bool {
		return s == w || strings.HasPrefix(s, w+" ") || strings.HasPrefix(s, w+"\t") || strings.HasPrefix(s, w+"\n") || strings.HasPrefix(s, w+";")
	}
	switch {
	case word("BEGIN"), word("START TRANSACTION"), word("XA START"), word("XA BEGIN"):
		return queryBegin
	case word("COMMIT"), word("XA PREPARE"):
		return queryCommit
	case word("ROLLBACK TO"), word("SAVEPOINT"), word("RELEASE SAVEPOINT"), word("XA END"):
		return queryInGroup
	case word("ROLLBACK"):
		return queryCommit
	case word("XA COMMIT"), word("XA ROLLBACK"):
		return queryXAFinish
	case word("INSERT"), word("UPDATE"), word("DELETE"), word("REPLACE"), word("LOAD"):
		return queryDML
	}
	return queryDDL
}

func (r *Reader) query(h *replication.EventHeader, e *replication.QueryEvent, commitPos uint32) (*event.Txn, error) {
	stmt := string(e.Query)
	schema := string(e.Schema)
	// What the server ran: a statement inside an executable comment
	// (/*!40000 TRUNCATE … */) is classified and filtered as itself.
	// It is read under the sql_mode it was written in (ANSI_QUOTES:
	// "x" is a name; NO_BACKSLASH_ESCAPES: a backslash is itself).
	mode, _ := sqlModeOf(e.StatusVars)
	executed := executableText(stmt, r.version, mode)
	switch classifyQuery(executed) {
	case queryBegin:
		if !r.grp.started {
			r.grp = group{started: true, startPos: r.position()}
		}
		r.grp.begun = true
		return nil, nil
	case queryCommit:
		// A ROLLBACK that reaches the binlog ends a group whose
		// non-transactional changes did happen: forward them.
		return r.commit(h, commitPos), nil
	case queryInGroup:
		return nil, nil
	case queryXAFinish:
		return r.commit(h, commitPos), nil
	case queryDML:
		if r.filter.system(schema) {
			if r.grp.begun && !r.grp.standalone {
				return nil, nil
			}
			return r.commit(h, commitPos), nil
		}
		return nil, fmt.Errorf("statement-based DML in the binlog at %s:%d (schema %q): %.200s; "+
			"a session wrote with binlog_format other than ROW: set binlog_format=ROW globally and in my.cnf and restart writers",
			r.file, h.LogPos, schema, stmt)
	}

	// DDL and other standalone statements.
	r.invalidateSchema()
	forward, err := r.filter.forwardDDL(executed, schema, mode)
	if err != nil {
		return nil, fmt.Errorf("DDL at %s:%d (schema %q): %w", r.file, h.LogPos, schema, err)
	}
	ddl := &event.DDL{Schema: schema, Statement: stmt, SQLMode: mode.reading()}
	// A DDL applied by a Hamal sink with a loop guard names its path in a
	// leading comment (a DDL has no transaction for a marker row).
	ddlPath, _ := loopguard.ParseComment(stmt)
	endsGroup := !r.grp.started || r.grp.standalone ||
		(r.flavor == FlavorMySQL && !r.grp.begun && !strings.HasSuffix(strings.ToUpper(strings.TrimSpace(stmt)), "START TRANSACTION"))
	if r.grp.begun && !r.grp.standalone {
		r.log.Warn("non-transactional statement inside a transaction ignored", "statement", truncate(stmt, 200), "after", r.lastSent.String())
		return nil, nil
	}
	if !endsGroup {
		// A DDL that opens a group with rows to follow (CREATE TABLE …
		// SELECT). It is emitted now with the position *before* the group,
		// so that a resume there replays the DDL (sinks tolerate that)
		// rather than losing the rows.
		if !forward {
			return nil, nil
		}
		return &event.Txn{
			Pos:        EncodePosition(r.grp.startPos),
			CommitTime: time.Unix(int64(h.Timestamp), 0),
			Kind:       event.KindDDL,
			DDL:        ddl,
			Path:       ddlPath,
		}, nil
	}
	txn := r.commit(h, commitPos)
	if forward {
		txn.Kind = event.KindDDL
		txn.DDL = ddl
		txn.Path = ddlPath
	}
	return txn, nil
}
