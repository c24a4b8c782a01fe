package mysql

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/event"
)

// literalColumns: name, SQL type, and per row the Go value go-mysql v1.16.0
// decodes from the binlog plus the SQL literal a client would have written
// ("" stands for _utf8mb4 X'<hex of the value>').
var literalColumns = []struct {
	name, sqlType string
	binary        bool
	values        [2]any
	sql           [2]string
}{
	{"u64", "BIGINT UNSIGNED", false, [2]any{uint64(math.MaxUint64), uint64(0)}, [2]string{"18446744073709551615", "0"}},
	{"i64", "BIGINT", false, [2]any{int64(math.MinInt64), int64(math.MaxInt64)}, [2]string{"-9223372036854775808", "9223372036854775807"}},
	{"i8", "TINYINT", false, [2]any{int8(-128), int8(127)}, [2]string{"-128", "127"}},
	{"u8", "TINYINT UNSIGNED", false, [2]any{uint8(255), uint8(0)}, [2]string{"255", "0"}},
	{"i16", "SMALLINT", false, [2]any{int16(-32768), nil}, [2]string{"-32768", "NULL"}},
	{"u24", "MEDIUMINT UNSIGNED", false, [2]any{uint32(16777215), nil}, [2]string{"16777215", "NULL"}},
	{"i32", "INT", false, [2]any{int32(math.MinInt32), int32(0)}, [2]string{"-2147483648", "0"}},
	{"u32", "INT UNSIGNED", false, [2]any{uint32(math.MaxUint32), nil}, [2]string{"4294967295", "NULL"}},
	{"flt", "FLOAT", false, [2]any{float32(0.1), float32(math.MaxFloat32)}, [2]string{"0.1", "3.4028234663852886e38"}},
	{"flt2", "FLOAT", false, [2]any{float32(-1.5e-30), float32(math.SmallestNonzeroFloat32)}, [2]string{"-1.5e-30", "1.401298464324817e-45"}},
	{"dbl", "DOUBLE", false, [2]any{float64(0.1), -math.MaxFloat64}, [2]string{"0.1", "-1.7976931348623157e308"}},
	{"dbl2", "DOUBLE", false, [2]any{math.SmallestNonzeroFloat64, float64(1) / 3}, [2]string{"5e-324", "0.3333333333333333"}},
	{"dec", "DECIMAL(30,10)", false, [2]any{"-12345678901234567890.1234567890", "0.0000000001"}, [2]string{"-12345678901234567890.1234567890", "0.0000000001"}},
	{"dec0", "DECIMAL(5,0)", false, [2]any{"-99999", "0"}, [2]string{"-99999", "0"}},
	{"dt", "DATE", false, [2]any{"2024-02-29", "0000-00-00"}, [2]string{"'2024-02-29'", "'0000-00-00'"}},
	{"tm", "TIME(3)", false, [2]any{"-838:59:59.999", "00:00:00.001"}, [2]string{"'-838:59:59.999'", "'00:00:00.001'"}},
	{"dtm", "DATETIME(6)", false, [2]any{"9999-12-31 23:59:59.999999", "1000-01-01 00:00:00.000000"}, [2]string{"'9999-12-31 23:59:59.999999'", "'1000-01-01 00:00:00.000000'"}},
	{"ts", "TIMESTAMP(6) NULL", false, [2]any{"2038-01-19 03:14:07.999999", "1970-01-01 00:00:01.000001"}, [2]string{"'2038-01-19 03:14:07.999999'", "'1970-01-01 00:00:01.000001'"}},
	{"yr", "YEAR", false, [2]any{int(2155), int(0)}, [2]string{"2155", "0"}},
	{"vc", "VARCHAR(64)", false, [2]any{"héllo 😀 'q' \"dq\" \\ \n\r\x1a\x00 end", ""}, [2]string{"", "''"}},
	{"ch", "CHAR(4)", false, [2]any{"ab", "😀"}, [2]string{"'ab'", "_utf8mb4 X'F09F9880'"}},
	{"lat", "VARCHAR(16) CHARACTER SET latin1", false, [2]any{"caf\xe9 '\\", "\xff\x00"}, [2]string{"_latin1 X'636166E920275C'", "_latin1 X'FF00'"}},
	{"mb3", "VARCHAR(16) CHARACTER SET utf8mb3", false, [2]any{"h\xc3\xa9 \\'", nil}, [2]string{"_utf8mb3 X'68C3A9205C27'", "NULL"}},
	{"txt", "TEXT", false, [2]any{[]byte("text ☃ \x00 ' \\ end"), []byte{}}, [2]string{"", "''"}},
	{"vb", "VARBINARY(16)", true, [2]any{"\x00\xff'\\\"\x1a", ""}, [2]string{"X'00FF275C221A'", "X''"}},
	{"bn", "BINARY(4)", true, [2]any{"\x01\x02", "\x00\x00\x00\xff"}, [2]string{"X'0102'", "X'000000FF'"}},
	{"bl", "BLOB", true, [2]any{[]byte{0x00, 0xff, 0x27, 0x5c, 0x1a, 0x0a, 0x0d, 0x22}, nil}, [2]string{"X'00FF275C1A0A0D22'", "NULL"}},
	{"js", "JSON", false, [2]any{[]byte(`{"a": [1, "😀", "q'\\\"\n"]}`), []byte(`[]`)}, [2]string{"", "'[]'"}},
	{"en", "ENUM('a','b','c')", false, [2]any{int64(2), int64(3)}, [2]string{"'b'", "'c'"}},
	{"st", "SET('x','y','z')", false, [2]any{int64(5), int64(0)}, [2]string{"'x,z'", "''"}},
	{"bt", "BIT(10)", false, [2]any{int64(1023), int64(513)}, [2]string{"b'1111111111'", "b'1000000001'"}},
	{"bt64", "BIT(64)", false, [2]any{int64(-1), int64(math.MinInt64)}, [2]string{"X'FFFFFFFFFFFFFFFF'", "X'8000000000000000'"}},
	{"nul", "INT NULL", false, [2]any{nil, int32(5)}, [2]string{"NULL", "5"}},
}

// TestLiteralRoundTrip writes rows through the sink and compares them,
// column by column (HEX and a NULL-safe equality), with the same rows
// inserted directly with SQL.
func TestLiteralRoundTrip(t *testing.T) {
	var defs []string
	tbl := &event.Table{Schema: "lit", Name: "viasink", PrimaryKey: []int{0}}
	tbl.Columns = append(tbl.Columns, event.Column{Name: "id"})
	for _, c := range literalColumns {
		defs = append(defs, fmt.Sprintf("`%s` %s", c.name, c.sqlType))
		tbl.Columns = append(tbl.Columns, event.Column{Name: c.name, Binary: c.binary, Nullable: true})
	}
	ddl := "CREATE TABLE %[1]s.%[2]s (id INT PRIMARY KEY, " + strings.Join(defs, ", ") + ")"
	createSchema(t, "lit", fmt.Sprintf(ddl, "%[1]s", "viasink")+";"+fmt.Sprintf(ddl, "%[1]s", "direct"))

	conn, err := server.Connect("")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET time_zone = '+00:00', NAMES utf8mb4"} {
		if _, err := conn.Execute(q); err != nil {
			t.Fatal(err)
		}
	}
	s := openSink(t, Config{Workers: 1})
	var changes []event.Change
	for r := range 2 {
		vals := []any{int32(r + 1)}
		lits := []string{fmt.Sprint(r + 1)}
		for _, c := range literalColumns {
			vals = append(vals, c.values[r])
			lit := c.sql[r]
			if lit == "" {
				lit = fmt.Sprintf("_utf8mb4 X'%X'", c.values[r])
			}
			lits = append(lits, lit)
		}
		changes = append(changes, ins(tbl, vals...))
		if _, err := conn.Execute("INSERT INTO lit.direct VALUES (" + strings.Join(lits, ",") + ")"); err != nil {
			t.Fatalf("direct insert of row %d: %v", r+1, err)
		}
	}
	apply(t, s, txn(changes...))
	// Replaying the same rows (REPLACE over existing rows) changes nothing.
	apply(t, s, txn(changes...))

	for _, c := range literalColumns {
		t.Run(c.name, func(t *testing.T) {
			q := fmt.Sprintf("SELECT a.id, HEX(a.`%[1]s`), HEX(b.`%[1]s`), a.`%[1]s` <=> b.`%[1]s`, CAST(a.`%[1]s` AS CHAR), CAST(b.`%[1]s` AS CHAR) FROM lit.viasink a JOIN lit.direct b USING (id) ORDER BY id", c.name)
			got := server.MustQuery(t, q)
			if len(got) != 2 {
				t.Fatalf("%d rows", len(got))
			}
			for _, r := range got {
				if r[1] != r[2] || r[3] != "1" {
					t.Errorf("row %s: via sink HEX %s (%s), direct HEX %s (%s), equal=%s", r[0], r[1], r[4], r[2], r[5], r[3])
				}
			}
		})
	}
}

func TestAppendLiteral(t *testing.T) {
	utf8 := &columnPlan{quotedName: "`c`", kind: kindUTF8}
	tests := []struct {
		name  string
		v     any
		cp    *columnPlan
		where bool
		want  string
	}{
		{"nil", nil, utf8, false, "NULL"},
		{"escapes", "a\x00'\"\\\n\r\x1ab", utf8, false, `'a\0\'\"\\\n\r\Zb'`},
		{"emoji", []byte("😀"), utf8, false, "'😀'"},
		{"binary", []byte{0, 0xff}, &columnPlan{kind: kindBinary}, false, "X'00ff'"},
		{"latin1", "\xe9", &columnPlan{kind: kindCharsetHex, charset: "latin1"}, false, "_latin1 X'e9'"},
		{"decimal", "-1.50", &columnPlan{kind: kindDecimal}, false, "-1.50"},
		{"decimal odd", "1e5", &columnPlan{kind: kindDecimal}, false, "'1e5'"},
		{"bit64", int64(-1), &columnPlan{kind: kindBits}, false, "18446744073709551615"},
		{"int64", int64(-1), &columnPlan{kind: kindPlain}, false, "-1"},
		{"float32", float32(0.1), &columnPlan{kind: kindPlain}, false, "0.10000000149011612"},
		{"float32 max", float32(math.MaxFloat32), &columnPlan{kind: kindPlain}, false, "3.4028234663852886e+38"},
		{"float32 where", float32(0.1), &columnPlan{kind: kindPlain}, true, "0.10000000149011612"},
		{"float64", 1e300, &columnPlan{kind: kindPlain}, false, "1e+300"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := appendLiteral(nil, tc.v, tc.cp, tc.where)
			if err != nil || string(got) != tc.want {
				t.Errorf("appendLiteral(%#v) = %s, %v; want %s", tc.v, got, err, tc.want)
			}
		})
	}
	for _, v := range []any{math.NaN(), float32(math.Inf(1)), struct{}{}} {
		if _, err := appendLiteral(nil, v, utf8, false); err == nil {
			t.Errorf("appendLiteral(%#v) succeeded, want an error", v)
		}
	}
}
