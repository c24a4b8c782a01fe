package mysql

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/test/harness"
)

// change is the part of an event.Change the tests compare.
type change struct {
	Op     event.Op
	NS     string
	Before []any
	After  []any
}

func changesOf(txn *event.Txn) []change {
	var out []change
	for _, c := range txn.Changes {
		out = append(out, change{c.Op, c.Namespace, c.Before, c.After})
	}
	return out
}

func gtidSeq(t *testing.T, gtid string) uint64 {
	t.Helper()
	// Single domain on the test server: "1-1-N".
	parts := strings.Split(gtid, "-")
	n, err := strconv.ParseUint(parts[len(parts)-1], 10, 64)
	if err != nil {
		t.Fatalf("gtid %q: %v", gtid, err)
	}
	return n
}

func TestRowChanges(t *testing.T) {
	srv := sharedServer(t)
	execIn(t, srv, "",
		"CREATE DATABASE rc",
		"CREATE TABLE rc.simple (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE rc.composite (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (b, a))",
		"CREATE TABLE rc.uniq (id INT PRIMARY KEY, email VARCHAR(50) NOT NULL, code INT, UNIQUE KEY uk_email (email), UNIQUE KEY uk_code (code), KEY plain (code, email))",
		"CREATE TABLE rc.skipped (id INT PRIMARY KEY)",
		"CREATE DATABASE IF NOT EXISTS hamal",
		"CREATE TABLE hamal.origin_marker (worker INT PRIMARY KEY, origin VARCHAR(64) NOT NULL)",
	)
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"rc.*"}
	cfg.Exclude = []string{"rc.skipped"}
	r := openReader(t, cfg, nil)
	if r.Flavor() != FlavorMariaDB {
		t.Fatalf("flavor = %q", r.Flavor())
	}

	wrote := time.Now().Truncate(time.Second) // the binlog stamps whole seconds
	execIn(t, srv, "rc",
		"BEGIN",
		"INSERT INTO simple VALUES (1,'a'),(2,'b')",
		"UPDATE simple SET v='c' WHERE id=2",
		"DELETE FROM simple WHERE id=1",
		"INSERT INTO skipped VALUES (1)",
		"COMMIT",
		"UPDATE simple SET id=20 WHERE id=2", // primary key change, autocommit
		"INSERT INTO composite VALUES (1,'x',10),(2,'x',20)",
		"BEGIN",
		"INSERT INTO uniq VALUES (1,'a@x',5)",
		"UPDATE uniq SET email='b@x' WHERE id=1",
		"COMMIT",
		"INSERT INTO skipped VALUES (2)", // filtered only: heartbeat
		"BEGIN",
		"INSERT INTO hamal.origin_marker VALUES (1,'dc2')",
		"INSERT INTO simple VALUES (3,'from dc2')",
		"COMMIT",
	)

	want := []struct {
		kind    event.Kind
		origin  string
		changes []change
	}{
		{event.KindDML, "", []change{
			{event.OpInsert, "rc.simple", nil, []any{int32(1), "a"}},
			{event.OpInsert, "rc.simple", nil, []any{int32(2), "b"}},
			{event.OpUpdate, "rc.simple", []any{int32(2), "b"}, []any{int32(2), "c"}},
			{event.OpDelete, "rc.simple", []any{int32(1), "a"}, nil},
		}},
		{event.KindDML, "", []change{
			{event.OpUpdate, "rc.simple", []any{int32(2), "c"}, []any{int32(20), "c"}},
		}},
		{event.KindDML, "", []change{
			{event.OpInsert, "rc.composite", nil, []any{int32(1), "x", int32(10)}},
			{event.OpInsert, "rc.composite", nil, []any{int32(2), "x", int32(20)}},
		}},
		{event.KindDML, "", []change{
			{event.OpInsert, "rc.uniq", nil, []any{int32(1), "a@x", int32(5)}},
			{event.OpUpdate, "rc.uniq", []any{int32(1), "a@x", int32(5)}, []any{int32(1), "b@x", int32(5)}},
		}},
		{event.KindHeartbeat, "", nil},
		{event.KindDML, "dc2", []change{
			{event.OpInsert, "rc.simple", nil, []any{int32(3), "from dc2"}},
		}},
	}
	var prev Position
	var got []*event.Txn
	for i, w := range want {
		txn := nextAny(t, r)
		for txn.Kind == event.KindHeartbeat && w.kind != event.KindHeartbeat && len(txn.Changes) == 0 && mustDecode(t, txn.Pos).GTID == prev.GTID {
			txn = nextAny(t, r) // a binlog heartbeat, not a commit
		}
		got = append(got, txn)
		if txn.Kind != w.kind {
			t.Fatalf("txn %d: kind %s, want %s\n%s", i, txn.Kind, w.kind, describe(txn))
		}
		if txn.Origin != w.origin {
			t.Errorf("txn %d: origin %q, want %q", i, txn.Origin, w.origin)
		}
		if !reflect.DeepEqual(changesOf(txn), w.changes) {
			t.Errorf("txn %d changes:\n got %#v\nwant %#v", i, changesOf(txn), w.changes)
		}
		pos := mustDecode(t, txn.Pos)
		if i > 0 {
			if gtidSeq(t, pos.GTID) != gtidSeq(t, prev.GTID)+1 {
				t.Errorf("txn %d: gtid %s does not follow %s (one Txn per commit)", i, pos.GTID, prev.GTID)
			}
			if pos.File == prev.File && pos.Pos <= prev.Pos {
				t.Errorf("txn %d: position %s did not advance from %s", i, pos, prev)
			}
		}
		// Dated within its binlog second, no later than its arrival.
		if ct := txn.CommitTime; ct.Before(wrote) || ct.After(time.Now()) {
			t.Errorf("txn %d: commit time %s, want between %s and now", i, ct.Format(time.RFC3339Nano), wrote.Format(time.RFC3339Nano))
		}
		prev = pos
	}

	// Table metadata: shared per table, keys as column indexes.
	simple := got[0].Changes[0].Table
	if got[0].Changes[3].Table != simple || got[1].Changes[0].Table != simple {
		t.Error("changes of one table do not share one *event.Table")
	}
	wantTables := []struct {
		tbl     *event.Table
		names   []string
		pk      []int
		uniques []event.UniqueKey
	}{
		{simple, []string{"id", "v"}, []int{0}, nil},
		{got[2].Changes[0].Table, []string{"a", "b", "v"}, []int{1, 0}, nil},
		{got[3].Changes[0].Table, []string{"id", "email", "code"}, []int{0}, []event.UniqueKey{
			{Name: "uk_code", Columns: []int{2}},
			{Name: "uk_email", Columns: []int{1}},
		}},
	}
	for _, w := range wantTables {
		var names []string
		for _, c := range w.tbl.Columns {
			names = append(names, c.Name)
		}
		if !reflect.DeepEqual(names, w.names) || !reflect.DeepEqual(w.tbl.PrimaryKey, w.pk) || !reflect.DeepEqual(w.tbl.UniqueKeys, w.uniques) {
			t.Errorf("table %s: columns %v pk %v uniques %v; want %v %v %v",
				w.tbl.Namespace(), names, w.tbl.PrimaryKey, w.tbl.UniqueKeys, w.names, w.pk, w.uniques)
		}
	}
	if got[3].ConflictKeys() == nil || got[3].IsBarrier() {
		t.Error("uniq txn has no conflict keys")
	}
}

func TestDDL(t *testing.T) {
	srv := sharedServer(t)
	execIn(t, srv, "", "CREATE DATABASE dd", "CREATE TABLE dd.t (id INT PRIMARY KEY)")
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"dd.*"}
	cfg.Exclude = []string{"dd.skip_*"}
	r := openReader(t, cfg, nil)

	execIn(t, srv, "dd",
		"INSERT INTO t VALUES (1)",
		"ALTER TABLE t ADD COLUMN c VARCHAR(10), ADD UNIQUE KEY uc (c)",
		"INSERT INTO t VALUES (2, 'x')",
		"CREATE TABLE skip_me (id INT PRIMARY KEY)",
		"INSERT INTO skip_me VALUES (1)",
		"CREATE TABLE t2 (id INT PRIMARY KEY)",
		"RENAME TABLE t2 TO t3",
		"DROP TABLE t3",
		"CREATE TABLE hamal_like (id INT)",
	)
	execIn(t, srv, "", "CREATE TABLE IF NOT EXISTS mysql.hamal_probe (id INT)", "DROP TABLE mysql.hamal_probe")

	type step struct {
		kind event.Kind
		ddl  string // statement prefix for DDL
	}
	steps := []step{
		{event.KindDML, ""},
		{event.KindDDL, "ALTER TABLE t ADD COLUMN c"},
		{event.KindDML, ""},
		{event.KindHeartbeat, ""}, // CREATE TABLE skip_me: excluded
		{event.KindHeartbeat, ""}, // rows of skip_me
		{event.KindDDL, "CREATE TABLE t2"},
		{event.KindDDL, "RENAME TABLE t2 TO t3"},
		{event.KindDDL, "DROP TABLE `t3`"},
		{event.KindDDL, "CREATE TABLE hamal_like"},
		{event.KindHeartbeat, ""}, // DDL on mysql.*
		{event.KindHeartbeat, ""},
	}
	var txns []*event.Txn
	lastGTID := ""
	for i, s := range steps {
		txn := nextAny(t, r)
		// Skip binlog heartbeats (no new GTID).
		for txn.Kind == event.KindHeartbeat && mustDecode(t, txn.Pos).GTID == lastGTID {
			txn = nextAny(t, r)
		}
		lastGTID = mustDecode(t, txn.Pos).GTID
		txns = append(txns, txn)
		if txn.Kind != s.kind {
			t.Fatalf("step %d: kind %s, want %s\n%s", i, txn.Kind, s.kind, describe(txn))
		}
		if s.kind == event.KindDDL {
			if txn.DDL == nil || !strings.HasPrefix(txn.DDL.Statement, s.ddl) || txn.DDL.Schema != "dd" {
				t.Fatalf("step %d: ddl %+v, want statement starting %q in schema dd", i, txn.DDL, s.ddl)
			}
		}
	}
	before, after := txns[0].Changes[0].Table, txns[2].Changes[0].Table
	if len(before.Columns) != 1 || len(after.Columns) != 2 || after.Columns[1].Name != "c" {
		t.Fatalf("columns before/after ALTER: %+v / %+v", before.Columns, after.Columns)
	}
	if !reflect.DeepEqual(after.UniqueKeys, []event.UniqueKey{{Name: "uc", Columns: []int{1}}}) {
		t.Fatalf("unique keys after ALTER: %+v", after.UniqueKeys)
	}
	if !reflect.DeepEqual(txns[2].Changes[0].After, []any{int32(2), "x"}) {
		t.Fatalf("row after ALTER: %#v", txns[2].Changes[0].After)
	}
}

// CREATE TABLE … SELECT is one binlog group with a DDL and rows: the DDL
// comes first (with the position before the group, so a resume replays it
// rather than losing the rows), then the rows as a DML Txn.
func TestCreateTableSelect(t *testing.T) {
	srv := sharedServer(t)
	execIn(t, srv, "", "CREATE DATABASE cs", "CREATE TABLE cs.src (id INT PRIMARY KEY)", "INSERT INTO cs.src VALUES (1),(2)")
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"cs.*"}
	r := openReader(t, cfg, nil)
	execIn(t, srv, "cs", "CREATE TABLE copy (PRIMARY KEY (id)) SELECT id FROM src", "INSERT INTO src VALUES (3)")
	first := next(t, r)
	if first.Kind != event.KindDDL || !strings.HasPrefix(first.DDL.Statement, "CREATE TABLE `copy`") && !strings.HasPrefix(first.DDL.Statement, "CREATE TABLE copy") {
		t.Fatalf("first: %s", describe(first))
	}
	second := next(t, r)
	if ddlPos := mustDecode(t, first.Pos); ddlPos.Pos <= 4 {
		t.Errorf("DDL position %s is not the end of the previous group", ddlPos)
	}
	if second.Kind == event.KindDML {
		if len(second.Changes) != 2 || second.Changes[0].Namespace != "cs.copy" {
			t.Fatalf("rows of CREATE … SELECT: %s", describe(second))
		}
		second = next(t, r)
	}
	if id := second.Changes[0].After[0]; second.Changes[0].Namespace != "cs.src" || id != int32(3) {
		t.Fatalf("after CREATE … SELECT: %s", describe(second))
	}
}

// TestDDLInExecutableComment: a DDL the server runs from an executable
// comment is filtered as the statement it is: TRUNCATE of an excluded
// table hidden in /*!40000 … */ or /*M! … */, run in an included default
// schema, is not forwarded; one of an included table is, as written.
func TestDDLInExecutableComment(t *testing.T) {
	srv := sharedServer(t)
	execIn(t, srv, "", "CREATE DATABASE ex", "CREATE TABLE ex.t (id INT PRIMARY KEY)",
		"CREATE DATABASE bank", "CREATE TABLE bank.ledger (id INT PRIMARY KEY)", "INSERT INTO bank.ledger VALUES (1)")
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"ex.*"}
	r := openReader(t, cfg, nil)
	execIn(t, srv, "ex",
		"/*!40000 TRUNCATE TABLE bank.ledger */",
		"/*M!100100 TRUNCATE TABLE bank.ledger */",
		"/*!40000 TRUNCATE TABLE ex.t */")
	lastGTID := ""
	var got []*event.Txn
	for len(got) < 3 {
		txn := nextAny(t, r)
		if txn.Kind == event.KindHeartbeat && mustDecode(t, txn.Pos).GTID == lastGTID {
			continue // a binlog heartbeat
		}
		lastGTID = mustDecode(t, txn.Pos).GTID
		got = append(got, txn)
	}
	for i, want := range []event.Kind{event.KindHeartbeat, event.KindHeartbeat, event.KindDDL} {
		if got[i].Kind != want {
			t.Fatalf("statement %d: %s, want %s\n%s", i, got[i].Kind, want, describe(got[i]))
		}
	}
	if got[2].DDL.Statement != "/*!40000 TRUNCATE TABLE ex.t */" {
		t.Errorf("forwarded statement %q", got[2].DDL.Statement)
	}
}

// TestDDLUnderANSIQuotes: on a server whose sql_mode has ANSI_QUOTES and
// NO_BACKSLASH_ESCAPES, DDL written with double-quoted names (as the server
// itself logs DROP TABLE) is read and filtered under that mode and carries
// the mode for the sink; a table outside the filter stays out.
func TestDDLUnderANSIQuotes(t *testing.T) {
	st := harness.Settings{SQLMode: "ANSI_QUOTES,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES", TimeZone: "+08:00", SystemTZ: "Asia/Shanghai"}
	srv := harness.MariaDB(t, harness.Options{ServerID: 61, Settings: st})
	execIn(t, srv, "", `CREATE DATABASE "app"`, `CREATE TABLE "app"."t_gone" (id INT PRIMARY KEY)`,
		`CREATE TABLE "app"."t_keep" (id INT PRIMARY KEY)`, `CREATE DATABASE "other"`, `CREATE TABLE "other"."t" (id INT PRIMARY KEY)`)
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"app.*"}
	r := openReader(t, cfg, nil)
	execIn(t, srv, "",
		`DROP TABLE "other"."t"`,
		`ALTER TABLE "app"."t_keep" ADD "c" VARCHAR(10) DEFAULT 'a\' COMMENT 'ends with a backslash'`,
		`DROP TABLE "app"."t_gone"`)
	var ddls []*event.Txn
	for len(ddls) < 2 {
		if txn := next(t, r); txn.Kind == event.KindDDL {
			ddls = append(ddls, txn)
		}
	}
	if !strings.HasPrefix(ddls[0].DDL.Statement, `ALTER TABLE "app"."t_keep"`) || !strings.HasPrefix(ddls[1].DDL.Statement, `DROP TABLE "app"."t_gone"`) {
		t.Fatalf("forwarded DDL:\n%s\n%s\nwant the ALTER of app.t_keep and the DROP of app.t_gone, not other.t", describe(ddls[0]), describe(ddls[1]))
	}
	for _, d := range ddls {
		if d.DDL.SQLMode != "ANSI_QUOTES,NO_BACKSLASH_ESCAPES" {
			t.Errorf("DDL %q carries sql_mode %q, want ANSI_QUOTES,NO_BACKSLASH_ESCAPES", d.DDL.Statement, d.DDL.SQLMode)
		}
	}
}
