package mysql

import (
	"context"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
)

func TestDDL(t *testing.T) {
	mustExec(t, "DROP DATABASE IF EXISTS ddl", "DROP DATABASE IF EXISTS ddl2", "CREATE DATABASE ddl")
	s := openSink(t, Config{Workers: 2})
	ctx := context.Background()
	before := table("ddl", "t", []string{"id"}, []int{0})
	after := table("ddl", "t", []string{"id", "v?"}, []int{0})

	// Each step is applied, then replayed; the replay must be tolerated.
	steps := []struct {
		name, schema, stmt string
		check              func(t *testing.T)
	}{
		{"create table", "ddl", "CREATE TABLE t (id INT PRIMARY KEY)", func(t *testing.T) {
			apply(t, s, txn(ins(before, int32(1)))) // caches the target's columns
		}},
		{"add column", "ddl", "ALTER TABLE t ADD COLUMN v INT", func(t *testing.T) {
			// The cache was dropped: the new column is seen.
			apply(t, s, txn(ins(after, int32(2), int32(20))))
			if got := rows(t, "SELECT id, v FROM ddl.t ORDER BY id"); got != "1,NULL;2,20" {
				t.Errorf("rows = %q", got)
			}
		}},
		{"add index", "", "CREATE INDEX v ON ddl.t (v)", nil},
		{"drop index", "ddl", "ALTER TABLE t DROP INDEX v", nil},
		{"drop column", "ddl", "ALTER TABLE t DROP COLUMN v", nil},
		{"rename", "ddl", "RENAME TABLE t TO t2", func(t *testing.T) {
			if got := rows(t, "SELECT COUNT(*) FROM ddl.t2"); got != "2" {
				t.Errorf("rows = %q", got)
			}
		}},
		{"create database", "ddl", "CREATE DATABASE ddl2", nil},
		{"drop table", "ddl", "/* comment */ DROP TABLE t2", nil},
		{"drop database", "ddl2", "DROP DATABASE ddl2", nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			apply(t, s, ddl(st.schema, st.stmt))
			if st.check != nil {
				st.check(t)
			}
			apply(t, s, ddl(st.schema, st.stmt)) // replay
		})
	}
	if got := rows(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('ddl','ddl2')"); got != "0" {
		t.Errorf("tables left: %q", got)
	}

	t.Run("fatal errors", func(t *testing.T) {
		for _, stmt := range []string{"ALTER TABLE nope ADD COLUMN x INT", "CREATE TABLEX broken"} {
			tx := ddl("ddl", stmt)
			err := s.Apply(ctx, []*event.Txn{tx})
			if err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), string(tx.Pos)) {
				t.Errorf("%s: error = %v, want fatal naming %s", stmt, err, tx.Pos)
			}
		}
	})
}

func TestFirstKeyword(t *testing.T) {
	for stmt, want := range map[string]string{
		"drop table x":                  "DROP",
		"  /* a */ /*!50000 x */RENAME": "RENAME",
		"# c\n-- d\nALTER TABLE":        "ALTER",
		"/* unterminated":               "",
	} {
		if got := firstKeyword(stmt); got != want {
			t.Errorf("firstKeyword(%q) = %q, want %q", stmt, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want errClass
	}{
		{&gomysql.MyError{Code: erLockDeadlock}, classTransient},
		{&gomysql.MyError{Code: erLockWaitTimeout}, classTransient},
		{&gomysql.MyError{Code: erServerGone}, classConnLost},
		{&gomysql.MyError{Code: erReadOnlyMode}, classConnLost},
		{&gomysql.MyError{Code: 1062}, classFatal},
		{gomysql.ErrBadConn, classConnLost},
	}
	for _, tc := range tests {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	// Through the protocol's Classify, a deadlock becomes a transient
	// batch error naming the position (the unit names the table).
	s := &Sink{log: discardLogger()}
	u := &unit{}
	err := sink.Classify(context.Background(), s, &event.Txn{Pos: event.Position("pos-x")},
		u.fail(&stmtError{table: "a.b", err: &gomysql.MyError{Code: erLockDeadlock}, server: true}))
	if !retry.IsTransient(err) || !strings.Contains(err.Error(), "a.b") || !strings.Contains(err.Error(), "pos-x") {
		t.Errorf("classified = %v", err)
	}
}
