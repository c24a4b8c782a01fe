package mysql

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/shardrule"
	"github.com/hamal-replication/hamal/test/harness"
)

// Each case puts a target row in place (as a local write at site b would),
// applies one incoming change from site a, and checks the row and the
// conflict record.
func TestConflicts(t *testing.T) {
	mustExec(t, "DROP DATABASE IF EXISTS cf", "CREATE DATABASE cf",
		"CREATE TABLE cf.t (id INT PRIMARY KEY, v INT, s VARCHAR(10), ts BIGINT)")
	tbl := table("cf", "t", []string{"id", "v?", "s?", "ts?"}, []int{0})
	r := func(id, v int32, s string, ts int64) []any { return row(id, v, s, ts) }
	from := func(c event.Change) *event.Txn {
		x := txn(c)
		x.Origin, x.Path = "a", []string{"a", "b"}
		return x
	}
	cases := []struct {
		name     string
		rule     ConflictRule
		target   string // row on the target before, as VALUES text; "" for none
		change   event.Change
		want     string // row after, "" for none
		conflict string // resolution recorded, "" for no conflict
	}{
		{"no conflict", ConflictRule{}, "(1,1,'x',10)", upd(tbl, r(1, 1, "x", 10), r(1, 2, "x", 11)), "1,2,x,11", ""},
		{"replay is no conflict", ConflictRule{}, "(1,2,'x',11)", upd(tbl, r(1, 1, "x", 10), r(1, 2, "x", 11)), "1,2,x,11", ""},
		{"update, source wins", ConflictRule{}, "(1,5,'x',12)", upd(tbl, r(1, 1, "x", 10), r(1, 2, "x", 11)), "1,2,x,11", "applied"},
		{"update, target wins", ConflictRule{Policy: TargetWins}, "(1,5,'x',12)", upd(tbl, r(1, 1, "x", 10), r(1, 2, "x", 11)), "1,5,x,12", "kept"},
		{"case-only change is seen", ConflictRule{Policy: TargetWins}, "(1,1,'X',10)", upd(tbl, r(1, 1, "x", 10), r(1, 2, "x", 11)), "1,1,X,10", "kept"},
		{"lww, target newer", ConflictRule{Policy: LastWriterWins, Column: "ts"}, "(1,5,'x',12)", upd(tbl, r(1, 1, "x", 10), r(1, 2, "x", 11)), "1,5,x,12", "kept"},
		{"lww, incoming newer", ConflictRule{Policy: LastWriterWins, Column: "ts"}, "(1,5,'x',12)", upd(tbl, r(1, 1, "x", 10), r(1, 2, "x", 13)), "1,2,x,13", "applied"},
		{"lww tie, greater site wins", ConflictRule{Policy: LastWriterWins, Column: "ts"}, "(1,5,'x',12)", upd(tbl, r(1, 1, "x", 10), r(1, 2, "x", 12)), "1,5,x,12", "kept"},
		{"insert finds another row", ConflictRule{}, "(1,5,'x',12)", ins(tbl, r(1, 2, "y", 11)...), "1,2,y,11", "applied"},
		{"insert finds its own row", ConflictRule{}, "(1,2,'y',11)", ins(tbl, r(1, 2, "y", 11)...), "1,2,y,11", ""},
		{"update of a deleted row, source wins", ConflictRule{}, "", upd(tbl, r(1, 1, "x", 10), r(1, 2, "x", 11)), "1,2,x,11", "applied"},
		{"update of a deleted row, target wins", ConflictRule{Policy: TargetWins}, "", upd(tbl, r(1, 1, "x", 10), r(1, 2, "x", 11)), "", "kept"},
		{"delete of a changed row, target wins", ConflictRule{Policy: TargetWins}, "(1,5,'x',12)", del(tbl, r(1, 1, "x", 10)...), "1,5,x,12", "kept"},
		{"delete of a changed row, lww older delete", ConflictRule{Policy: LastWriterWins, Column: "ts"}, "(1,5,'x',12)", del(tbl, r(1, 1, "x", 10)...), "1,5,x,12", "kept"},
		{"delete of a gone row", ConflictRule{}, "", del(tbl, r(1, 1, "x", 10)...), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustExec(t, "DELETE FROM cf.t")
			if tc.target != "" {
				mustExec(t, "INSERT INTO cf.t VALUES "+tc.target)
			}
			s := openSink(t, Config{Workers: 1, Site: "b", Conflicts: ConflictRules{Tables: map[string]ConflictRule{"cf.t": tc.rule}}})
			before := s.Conflicts()
			x := from(tc.change)
			apply(t, s, x)
			if got := rows(t, "SELECT id, v, s, ts FROM cf.t"); got != tc.want {
				t.Errorf("row %q, want %q", got, tc.want)
			}
			rec := rows(t, "SELECT resolution, incoming_origin, existing_origin, row_key, policy, existing_image IS NOT NULL FROM hamal.conflicts WHERE source_position = '"+x.Pos.String()+"'")
			if tc.conflict == "" {
				if rec != "" || s.Conflicts() != before {
					t.Errorf("conflict recorded: %q", rec)
				}
				return
			}
			policy := tc.rule.Policy
			if policy == "" {
				policy = SourceWins
			}
			wantRec := strings.Join([]string{tc.conflict, "a", "b", "id=1", policy, map[bool]string{true: "1", false: "0"}[tc.target != ""]}, ",")
			if rec != wantRec || s.Conflicts() != before+1 {
				t.Errorf("record %q (count +%d), want %q", rec, s.Conflicts()-before, wantRec)
			}
		})
	}
}

// A conflict on a row holding bytes that are not text (BIT, VARBINARY) is
// recorded all the same: the target image is JSON with numbers and base64.
func TestConflictRecordOfBinaryColumns(t *testing.T) {
	mustExec(t, "DROP DATABASE IF EXISTS cfb", "CREATE DATABASE cfb",
		"CREATE TABLE cfb.t (id INT PRIMARY KEY, bt BIT(10), vb VARBINARY(8))",
		"INSERT INTO cfb.t VALUES (1, b'1111101000', 0xE87DFCFC)")
	tbl := table("cfb", "t", []string{"id", "bt?", "vb?"}, []int{0})
	s := openSink(t, Config{Workers: 1, Site: "b"})
	x := txn(upd(tbl, row(int32(1), int64(1), []byte{0xfc}), row(int32(1), int64(2), []byte{0xfd})))
	x.Origin, x.Path = "a", []string{"a", "b"}
	apply(t, s, x)
	if got := rows(t, "SELECT existing_image FROM hamal.conflicts WHERE source_position='"+x.Pos.String()+"'"); got != `{"id": 1, "bt": 1000, "vb": {"base64": "6H38/A=="}}` {
		t.Errorf("existing image %q", got)
	}
	if got := rows(t, "SELECT id, bt+0, HEX(vb) FROM cfb.t"); got != "1,2,FD" {
		t.Errorf("row %q, want the incoming change applied (source-wins)", got)
	}
}

// TestConflictOnOddTableName: the conflict detection's statements name a
// table whose name holds " (", a backtick and a quote (any source user
// with CREATE TABLE can make one) as it is; the conflict is resolved and
// recorded, and the channel does not stop.
func TestConflictOnOddTableName(t *testing.T) {
	const name = "t (x`'y"
	mustExec(t, "DROP DATABASE IF EXISTS cfq", "CREATE DATABASE cfq",
		"CREATE TABLE cfq.`t (x``'y` (id INT PRIMARY KEY, v INT)", "INSERT INTO cfq.`t (x``'y` VALUES (1, 5)")
	tbl := table("cfq", name, []string{"id", "v?"}, []int{0})
	s := openSink(t, Config{Workers: 1, Site: "b"})
	x := txn(upd(tbl, row(int32(1), int32(1)), row(int32(1), int32(2))))
	x.Origin, x.Path = "a", []string{"a", "b"}
	apply(t, s, x)
	if got := rows(t, "SELECT id, v FROM cfq.`t (x``'y`"); got != "1,2" {
		t.Errorf("row %q, want 1,2 (source wins)", got)
	}
	if rec := rows(t, "SELECT resolution, table_name FROM hamal.conflicts WHERE source_position = '"+x.Pos.String()+"'"); rec != "applied,cfq."+name {
		t.Errorf("conflict record %q", rec)
	}
}

// TestConflictRecordOnLatin1Server: on a server started without any
// charset option (latin1 default), a conflict on a row holding Chinese and
// emoji text, latin1 text and bytes that are not UTF-8 is recorded, with
// both images readable JSON that gives the exact values back, and the
// channel goes on.
func TestConflictRecordOnLatin1Server(t *testing.T) {
	srv := harness.MariaDB(t, harness.Options{ServerID: 42, Settings: harness.Settings{NoCharset: true}})
	srv.MustExec(t, "CREATE DATABASE cfl",
		"CREATE TABLE cfl.t (id INT PRIMARY KEY, u VARCHAR(20) CHARACTER SET utf8mb4, l VARCHAR(20), vb VARBINARY(8)) DEFAULT CHARSET=latin1",
		"INSERT INTO cfl.t VALUES (1, _utf8mb4 X'E4B8ADE69687F09F9880', _latin1 X'E9', X'FF00')")
	tbl := table("cfl", "t", []string{"id", "u?", "l?", "vb?"}, []int{0})
	s, err := Open(context.Background(), Config{Addr: srv.Addr, User: "root", Channel: "latin1", Workers: 1, Site: "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x := txn(upd(tbl, row(int32(1), "中文", "\xe9", []byte{0xfe}), row(int32(1), "中文😀改", "\xe8", []byte{0xc3, 0x28})))
	x.Origin, x.Path = "a", []string{"a", "b"}
	if err := s.Apply(context.Background(), []*event.Txn{x}); err != nil {
		t.Fatalf("Apply: %v (recording a conflict must not stop the channel)", err)
	}
	// Read as hex: the test's client may not run in utf8mb4.
	got := srv.MustQuery(t, "SELECT HEX(incoming_image), HEX(existing_image), @@character_set_server, (SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA='hamal' AND TABLE_NAME='conflicts') FROM hamal.conflicts")
	if len(got) != 1 {
		t.Fatalf("conflicts: %v, want one", got)
	}
	if got[0][2] != "latin1" || got[0][3] != "utf8mb4_bin" {
		t.Errorf("server charset %s, conflicts table %s: want a latin1 server and a utf8mb4 table", got[0][2], got[0][3])
	}
	for i := 0; i < 2; i++ {
		b, _ := hex.DecodeString(got[0][i])
		got[0][i] = string(b)
	}
	var in, ex map[string]any
	if err := json.Unmarshal([]byte(got[0][0]), &in); err != nil {
		t.Fatalf("incoming image %q: %v", got[0][0], err)
	}
	if err := json.Unmarshal([]byte(got[0][1]), &ex); err != nil {
		t.Fatalf("existing image %q: %v", got[0][1], err)
	}
	b64 := func(v any) string { m, _ := v.(map[string]any); s, _ := m["base64"].(string); return s }
	if in["u"] != "中文😀改" || in["l"] != "è" || b64(in["vb"]) != "wyg=" {
		t.Errorf("incoming image %v: want the Chinese and emoji text, latin1 è, and the bytes C3 28 as base64", in)
	}
	if ex["u"] != "中文😀" || ex["l"] != "é" || b64(ex["vb"]) != "/wA=" {
		t.Errorf("existing image %v: want the Chinese and emoji text, latin1 é, and the bytes FF 00 as base64", ex)
	}
	if r := srv.MustQuery(t, "SELECT HEX(u), HEX(l), HEX(vb) FROM cfl.t")[0]; r[0] != "E4B8ADE69687F09F9880E694B9" || r[1] != "E8" || r[2] != "C328" {
		t.Errorf("row %v: want the incoming change applied (source-wins)", r)
	}
}

// TestOwnershipGuard: with sink.ownership, a change whose origin is not
// its owner's home site (rule list: owners 1-9 live at a, 10+ at b) is
// applied and recorded as a foreign write, counted per table; a change
// from the owner's home is not.
func TestOwnershipGuard(t *testing.T) {
	mustExec(t, "DROP DATABASE IF EXISTS og", "CREATE DATABASE og", "CREATE TABLE og.orders (id INT PRIMARY KEY, user_id INT NOT NULL, v INT)")
	rule, err := shardrule.Build(&shardrule.Spec{Rule: "range", Ranges: []shardrule.RangeSpec{
		{Shard: 0, To: yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "10"}},
		{Shard: 1, From: yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "10"}}}}, 2, "site")
	if err != nil {
		t.Fatal(err)
	}
	tbl := table("og", "orders", []string{"id", "user_id", "v?"}, []int{0})
	s := openSink(t, Config{Workers: 1, Site: "b", Channel: "own",
		Ownership: map[string]Ownership{"og.orders": {Column: "user_id", Rule: rule, Sites: []string{"a", "b"}}}})
	from := func(c ...event.Change) *event.Txn {
		x := txn(c...)
		x.Origin, x.Path = "a", []string{"a", "b"}
		return x
	}
	home := from(ins(tbl, int32(1), int32(5), int32(1)))
	foreign := from(ins(tbl, int32(2), int32(42), int32(1)), del(tbl, int32(3), int32(43), nil))
	apply(t, s, home, foreign)
	if got := rows(t, "SELECT id, user_id FROM og.orders ORDER BY id"); got != "1,5;2,42" {
		t.Errorf("rows %q: want both inserts applied", got)
	}
	got := rows(t, "SELECT kind, row_key, change_kind, resolution, incoming_origin, existing_origin, source_position FROM hamal.conflicts WHERE channel='own' ORDER BY id")
	want := "foreign-write,id=2,upsert,applied,a,b," + foreign.Pos.String() + ";foreign-write,id=3,delete,applied,a,b," + foreign.Pos.String()
	if got != want {
		t.Errorf("records %q, want %q", got, want)
	}
	if n := s.ForeignWrites()["og.orders"]; n != 2 {
		t.Errorf("ForeignWrites = %v, want 2 for og.orders", s.ForeignWrites())
	}
	if s.Conflicts() != 0 {
		t.Errorf("Conflicts = %d: a foreign write is not a conflict", s.Conflicts())
	}
}

// TestUniqueCollision: with sites set, an incoming row whose unique value
// a different target row holds is a unique-collision conflict, recorded
// with both images and resolved by the policy; a unique value moved
// between two rows of the same batch is not one.
func TestUniqueCollision(t *testing.T) {
	tbl := table("uc", "u", []string{"id", "email", "v?"}, []int{0}, event.UniqueKey{Name: "uk", Columns: []int{1}})
	for _, tc := range []struct {
		policy   string
		want     string
		resolved string
	}{
		// v as HEX: the test's own session has the server's default
		// charset, which on a latin1 server would show 中 as '?'.
		{SourceWins, "2,e,E4B8AD", "applied"},
		{TargetWins, "1,e,6F6C64", "kept"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			mustExec(t, "DROP DATABASE IF EXISTS uc", "CREATE DATABASE uc CHARACTER SET utf8mb4",
				"CREATE TABLE uc.u (id INT PRIMARY KEY, email VARCHAR(20) NOT NULL, v VARCHAR(10), UNIQUE KEY uk (email))",
				"INSERT INTO uc.u VALUES (1, 'e', 'old'), (5, 'f', 'x'), (6, 'g', 'y')")
			ch := "uc-" + tc.policy
			s := openSink(t, Config{Workers: 1, Site: "b", Channel: ch, Conflicts: ConflictRules{Default: ConflictRule{Policy: tc.policy}}})
			x := txn(ins(tbl, int32(2), "e", "中"))
			x.Origin, x.Path = "a", []string{"a", "b"}
			// A move inside one batch: 5 gives f to 6, 6's g goes to 5.
			y := txn(upd(tbl, row(int32(5), "f", "x"), row(int32(5), "tmp", "x")), upd(tbl, row(int32(6), "g", "y"), row(int32(6), "f", "y")),
				upd(tbl, row(int32(5), "tmp", "x"), row(int32(5), "g", "x")))
			y.Origin, y.Path = "a", []string{"a", "b"}
			apply(t, s, x, y)
			if got := rows(t, "SELECT id, email, HEX(v) FROM uc.u WHERE id < 5 ORDER BY id"); got != tc.want {
				t.Errorf("rows %q, want %q", got, tc.want)
			}
			if got := rows(t, "SELECT id, email FROM uc.u WHERE id >= 5 ORDER BY id"); got != "5,g;6,f" {
				t.Errorf("moved rows %q, want 5,g;6,f", got)
			}
			got := rows(t, "SELECT kind, row_key, resolution, incoming_origin, existing_origin FROM hamal.conflicts WHERE channel='"+ch+"'")
			if got != "unique-collision,id=2,"+tc.resolved+",a,b" {
				t.Errorf("records %q, want one unique-collision of id=2 resolved %s", got, tc.resolved)
			}
			img := rows(t, "SELECT existing_image FROM hamal.conflicts WHERE channel='"+ch+"'")
			if !strings.Contains(img, `"id": 1`) || !strings.Contains(img, `"old"`) {
				t.Errorf("existing image %q, want the target's row 1", img)
			}
			apply(t, s, x) // a replay is no second collision, and keeps the resolution
			if n := rows(t, "SELECT COUNT(*) FROM hamal.conflicts WHERE channel='"+ch+"'"); n != "1" {
				t.Errorf("%s records after a replay, want 1", n)
			}
			if got := rows(t, "SELECT id, email, HEX(v) FROM uc.u WHERE id < 5 ORDER BY id"); got != tc.want {
				t.Errorf("rows after the replay %q, want %q", got, tc.want)
			}
		})
	}
}
