package redact

import "testing"

func TestMessage(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"duplicate entry", `apply batch at 0-1-9: Error 1062: Duplicate entry 'secret-42' for key 'PRIMARY'`,
			`apply batch at 0-1-9: Error 1062: Duplicate entry '…' for key '…'`},
		{"names kept", `Table 'app.t' doesn't exist; Unknown column 'c' in 'field list'`,
			`Table 'app.t' doesn't exist; Unknown column 'c' in '…'`},
		{"incorrect value", `Incorrect integer value: 'abc' for column 'n' at row 1`,
			`Incorrect integer value: '…' for column 'n' at row 1`},
		{"redis arguments", `apply to target redis 127.0.0.1:6379: RENAME "a:m1" "x:renamed" (Txn at 5): ERR no such key`,
			`apply to target redis 127.0.0.1:6379: RENAME "…" "…" (Txn at 5): ERR no such key`},
		{"escapes", `value 'it\'s' and 'a''b' and "q\"x" end`, `value '…' and '…' and "…" end`},
		{"unclosed", `statement "INSERT INTO t VALUES (1, 'x`, `statement "…`},
		{"mongo dup key", `E11000 duplicate key error collection: app.users index: _id_ dup key: { _id: 42 } more`,
			`E11000 duplicate key error collection: app.users index: _id_ dup key: {…} more`},
		{"hex", `Incorrect string value: 0xF09F98808080 for column`, `Incorrect string value: 0x… for column`},
		{"short hex and positions kept", `at mysql-bin.000003:1234, GTID 0-1-77, code 0x1f`, `at mysql-bin.000003:1234, GTID 0-1-77, code 0x1f`},
		{"plain", `source: connection refused`, `source: connection refused`},
		{"empty", ``, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Message(tc.in); got != tc.want {
				t.Errorf("Message(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzMessage(f *testing.F) {
	for _, s := range []string{`Duplicate entry 'x' for key 'k'`, `"a\`, `dup key: {`, `0x`, `'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = Message(s) // never panics
	})
}
