package mysql

import (
	"fmt"
	"reflect"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// TestValueContract is the contract between this source and the sinks: for
// each MariaDB column type, the Go type and value a Change carries (exactly
// as go-mysql v1.16.0 decodes the binlog with UseDecimal=false,
// ParseTime=false, TimestampStringLocation=UTC) and the column metadata.
// A sink renders these values back byte-exactly.
func TestValueContract(t *testing.T) {
	type col struct {
		name     string
		def      string // column definition
		literal  string // SQL literal inserted
		want     any    // decoded Go value
		typ      byte   // event.Column.Type
		unsigned bool
		binary   bool
	}
	cols := []col{
		{"ti", "TINYINT", "-128", int8(-128), gomysql.MYSQL_TYPE_TINY, false, false},
		{"tiu", "TINYINT UNSIGNED", "255", uint8(255), gomysql.MYSQL_TYPE_TINY, true, false},
		{"si", "SMALLINT", "-32768", int16(-32768), gomysql.MYSQL_TYPE_SHORT, false, false},
		{"siu", "SMALLINT UNSIGNED", "65535", uint16(65535), gomysql.MYSQL_TYPE_SHORT, true, false},
		{"mi", "MEDIUMINT", "-8388608", int32(-8388608), gomysql.MYSQL_TYPE_INT24, false, false},
		{"miu", "MEDIUMINT UNSIGNED", "16777215", uint32(16777215), gomysql.MYSQL_TYPE_INT24, true, false},
		{"i", "INT", "-2147483648", int32(-2147483648), gomysql.MYSQL_TYPE_LONG, false, false},
		{"iu", "INT UNSIGNED", "4294967295", uint32(4294967295), gomysql.MYSQL_TYPE_LONG, true, false},
		{"bi", "BIGINT", "-9223372036854775808", int64(-9223372036854775808), gomysql.MYSQL_TYPE_LONGLONG, false, false},
		{"biu", "BIGINT UNSIGNED", "18446744073709551615", uint64(18446744073709551615), gomysql.MYSQL_TYPE_LONGLONG, true, false},
		{"dcm", "DECIMAL(30,10)", "-12345678901234567890.0123456789", "-12345678901234567890.0123456789", gomysql.MYSQL_TYPE_NEWDECIMAL, false, false},
		{"decz", "DECIMAL(10,2)", "1.50", "1.50", gomysql.MYSQL_TYPE_NEWDECIMAL, false, false},
		{"f", "FLOAT", "1.5", float32(1.5), gomysql.MYSQL_TYPE_FLOAT, false, false},
		{"d", "DOUBLE", "-2.25e100", float64(-2.25e100), gomysql.MYSQL_TYPE_DOUBLE, false, false},
		{"dt", "DATE", "'2024-02-29'", "2024-02-29", gomysql.MYSQL_TYPE_DATE, false, false},
		// TIME leaves a zero fraction out; DATETIME(n) and TIMESTAMP(n) keep it.
		{"tm", "TIME(6)", "'-838:59:59.000000'", "-838:59:59", gomysql.MYSQL_TYPE_TIME2, false, false},
		{"tmf", "TIME(6)", "'-12:34:56.123456'", "-12:34:56.123456", gomysql.MYSQL_TYPE_TIME2, false, false},
		{"tm0", "TIME", "'23:59:59'", "23:59:59", gomysql.MYSQL_TYPE_TIME2, false, false},
		{"dtm", "DATETIME(6)", "'2024-01-02 03:04:05.123456'", "2024-01-02 03:04:05.123456", gomysql.MYSQL_TYPE_DATETIME2, false, false},
		{"dtm0", "DATETIME", "'9999-12-31 23:59:59'", "9999-12-31 23:59:59", gomysql.MYSQL_TYPE_DATETIME2, false, false},
		{"dtmz", "DATETIME(6)", "'2024-01-02 03:04:05.000000'", "2024-01-02 03:04:05.000000", gomysql.MYSQL_TYPE_DATETIME2, false, false},
		{"dtm3", "DATETIME(3)", "'2024-01-02 03:04:05.120'", "2024-01-02 03:04:05.120", gomysql.MYSQL_TYPE_DATETIME2, false, false},
		// TIMESTAMP is rendered in UTC: written at +05:00 as 08:04:05.
		{"ts", "TIMESTAMP(6) NULL", "'2024-01-02 08:04:05.123456'", "2024-01-02 03:04:05.123456", gomysql.MYSQL_TYPE_TIMESTAMP2, false, false},
		// YEAR is flagged unsigned by the binlog's signedness metadata.
		{"tsz", "TIMESTAMP(3) NULL", "'2024-01-02 08:04:05.000'", "2024-01-02 03:04:05.000", gomysql.MYSQL_TYPE_TIMESTAMP2, false, false},
		{"yr", "YEAR", "2024", int(2024), gomysql.MYSQL_TYPE_YEAR, true, false},
		{"ch", "CHAR(10) CHARACTER SET utf8mb4", "'héllo😀'", "héllo😀", gomysql.MYSQL_TYPE_STRING, false, false},
		{"vc", "VARCHAR(20) CHARACTER SET utf8mb4", "'😀 x '", "😀 x ", gomysql.MYSQL_TYPE_VARCHAR, false, false},
		{"bn", "BINARY(4)", "0x00ff0001", "\x00\xff\x00\x01", gomysql.MYSQL_TYPE_STRING, false, true},
		// The binlog drops BINARY's trailing 0x00 padding (and CHAR's trailing
		// spaces); writing the value back into BINARY(4) pads it again.
		{"bnpad", "BINARY(4)", "0xff", "\xff", gomysql.MYSQL_TYPE_STRING, false, true},
		{"chpad", "CHAR(5)", "'ab   '", "ab", gomysql.MYSQL_TYPE_STRING, false, false},
		{"vb", "VARBINARY(8)", "0xff0000", "\xff\x00\x00", gomysql.MYSQL_TYPE_VARCHAR, false, true},
		{"bl", "BLOB", "0x00ff", []byte{0x00, 0xff}, gomysql.MYSQL_TYPE_BLOB, false, true},
		{"tx", "TEXT CHARACTER SET utf8mb4", "'text 😀'", []byte("text 😀"), gomysql.MYSQL_TYPE_BLOB, false, false},
		{"js", "JSON", `'{"a": [1, 2.50, "x"]}'`, []byte(`{"a": [1, 2.50, "x"]}`), gomysql.MYSQL_TYPE_BLOB, false, false},
		{"en", "ENUM('a','b','c')", "'b'", int64(2), gomysql.MYSQL_TYPE_ENUM, false, false},
		{"st", "SET('x','y','z')", "'x,z'", int64(5), gomysql.MYSQL_TYPE_SET, false, false},
		{"bt", "BIT(10)", "b'1000000001'", int64(513), gomysql.MYSQL_TYPE_BIT, false, false},
	}

	srv := sharedServer(t)
	create := "CREATE TABLE vt.all_types (id INT PRIMARY KEY"
	insert := "INSERT INTO vt.all_types VALUES (1"
	insertNull := "INSERT INTO vt.all_types (id) VALUES (2)"
	for _, c := range cols {
		create += fmt.Sprintf(", %s %s", c.name, c.def)
		insert += ", " + c.literal
	}
	execIn(t, srv, "", "CREATE DATABASE vt", create+")")
	cfg := baseConfig(t, srv)
	cfg.Tables = []string{"vt.*"}
	r := openReader(t, cfg, nil)
	// The writer's session zone must not matter: TIMESTAMP values come out
	// in UTC, and the sink writes them back with time_zone='+00:00'.
	execIn(t, srv, "", "SET time_zone='+05:00'", insert+")", insertNull)

	txn := next(t, r)
	if len(txn.Changes) != 1 {
		t.Fatalf("got %s", describe(txn))
	}
	row, tbl := txn.Changes[0].After, txn.Changes[0].Table
	nulls := next(t, r).Changes[0].After
	for i, c := range cols {
		t.Run(c.def, func(t *testing.T) {
			got := row[i+1]
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: got %T %#v, want %T %#v", c.def, got, got, c.want, c.want)
			}
			meta := tbl.Columns[i+1]
			// Meta and Members are the binlog's own metadata, checked
			// where they are used (envelope formats); compared here: the rest.
			meta.Meta, meta.Members = 0, nil
			wantMeta := event.Column{Name: c.name, Type: c.typ, Unsigned: c.unsigned, Binary: c.binary, Nullable: true}
			if !reflect.DeepEqual(meta, wantMeta) {
				t.Errorf("%s: column %+v, want %+v", c.def, meta, wantMeta)
			}
			if nulls[i+1] != nil {
				t.Errorf("%s: NULL decoded as %T %#v", c.def, nulls[i+1], nulls[i+1])
			}
		})
	}
	if id := tbl.Columns[0]; id.Name != "id" || id.Type != gomysql.MYSQL_TYPE_LONG || id.Unsigned || id.Binary || id.Nullable {
		t.Errorf("id column %+v", tbl.Columns[0])
	}
}
