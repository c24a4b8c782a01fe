package mysql

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/test/harness"
)

// server is one MariaDB shared by every test and benchmark of the package.
var server *harness.Server

func TestMain(m *testing.M) {
	// make test-matrix runs the package once per row of the server-settings
	// matrix, the shared target taking the row's target settings.
	opts := harness.Options{ServerID: 41}
	if row, ok := harness.SelectedRow(); ok {
		opts.Settings = row.Target
		fmt.Fprintf(os.Stderr, "sink/mysql: target settings of matrix row %s: %+v\n", row.Name, row.Target)
	}
	s, err := harness.StartMariaDB(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start MariaDB:", err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	_ = s.Remove()
	os.Exit(code)
}

// openSink opens a sink on the shared server and closes it when the test
// ends.
func openSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	cfg.Addr, cfg.User = server.Addr, "root"
	if cfg.Channel == "" {
		cfg.Channel = t.Name()
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustExec(t testing.TB, stmts ...string) {
	t.Helper()
	server.MustExec(t, stmts...)
}

func checksum(t testing.TB, table, orderBy string) (string, int) {
	t.Helper()
	sum, n, err := server.TableChecksum(table, orderBy)
	if err != nil {
		t.Fatal(err)
	}
	return sum, n
}

// Txn builders. Positions are "pos-N" so errors can be checked for them.

var txnSeq int

func txn(changes ...event.Change) *event.Txn {
	txnSeq++
	return &event.Txn{Seq: uint64(txnSeq), Pos: event.Position(fmt.Sprintf("pos-%d", txnSeq)), Kind: event.KindDML, Changes: changes}
}

func ins(t *event.Table, after ...any) event.Change {
	return event.Change{Op: event.OpInsert, Namespace: t.Namespace(), Table: t, After: after}
}

func del(t *event.Table, before ...any) event.Change {
	return event.Change{Op: event.OpDelete, Namespace: t.Namespace(), Table: t, Before: before}
}

func upd(t *event.Table, before, after []any) event.Change {
	return event.Change{Op: event.OpUpdate, Namespace: t.Namespace(), Table: t, Before: before, After: after}
}

func row(v ...any) []any { return v }

func ddl(schema, stmt string) *event.Txn {
	txnSeq++
	return &event.Txn{Seq: uint64(txnSeq), Pos: event.Position(fmt.Sprintf("pos-%d", txnSeq)), Kind: event.KindDDL,
		DDL: &event.DDL{Schema: schema, Statement: stmt}}
}

func table(schema, name string, cols []string, pk []int, uks ...event.UniqueKey) *event.Table {
	t := &event.Table{Schema: schema, Name: name, PrimaryKey: pk, UniqueKeys: uks}
	for _, c := range cols {
		nullable := strings.HasSuffix(c, "?")
		t.Columns = append(t.Columns, event.Column{Name: strings.TrimSuffix(c, "?"), Nullable: nullable})
	}
	return t
}

func apply(t testing.TB, s *Sink, batch ...*event.Txn) {
	t.Helper()
	if err := s.Apply(context.Background(), batch); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func rows(t testing.TB, q string) string {
	t.Helper()
	var out []string
	for _, r := range server.MustQuery(t, q) {
		out = append(out, strings.Join(r, ","))
	}
	return strings.Join(out, ";")
}
