package reshard

import (
	"encoding/json"
	"testing"
)

func TestKeysetSQL(t *testing.T) {
	one := pkey{cols: []string{"id"}, ints: []bool{true}}
	two := pkey{cols: []string{"tenant", "id"}, ints: []bool{false, true}}
	three := pkey{cols: []string{"a", "b", "c"}, ints: []bool{true, true, true}}
	cases := []struct{ got, want string }{
		{one.after([]string{"7"}), "`id` > 7"},
		{one.atMost([]string{"7"}), "`id` <= 7"},
		{two.after([]string{"x'y", "5"}), "`tenant` >= 'x\\'y' AND (`tenant` > 'x\\'y' OR (`tenant` = 'x\\'y' AND (`id` > 5)))"},
		{two.atMost([]string{"b", "9"}), "`tenant` <= 'b' AND (`tenant` < 'b' OR (`tenant` = 'b' AND (`id` <= 9)))"},
		{three.after([]string{"1", "2", "3"}), "`a` >= 1 AND (`a` > 1 OR (`a` = 1 AND (`b` > 2 OR (`b` = 2 AND (`c` > 3)))))"},
		{two.list(), "`tenant`,`id`"},
		{two.rangeWhere(nil, nil), ""},
		{one.rangeWhere([]string{"1"}, []string{"9"}), " WHERE (`id` > 1) AND (`id` <= 9)"},
		{one.rangeWhere(nil, []string{"9"}), " WHERE (`id` <= 9)"},
		{pkey{cols: []string{"h"}, ints: []bool{false}, bins: []bool{true}}.after([]string{"\xff\x00'"}), "`h` > X'ff0027'"},
		{showKey([]string{"7"}), "7"},
		{showKey([]string{"eu", "7"}), "(eu, 7)"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("case %d:\n got %s\nwant %s", i, c.got, c.want)
		}
	}
}

func TestAppendEscapedMatchesQuoteString(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if got, want := string(appendEscaped(nil, all)), escape(string(all)); got != want {
		t.Fatalf("appendEscaped differs from escape:\n%q\n%q", got, want)
	}
}

// A binary key's last value survives the state's JSON exactly, and a
// state written before composite keys (last) still resumes.
func TestSegmentLastKeyRoundTrip(t *testing.T) {
	in := Segment{LastKey: [][]byte{[]byte("\xff\xfe\x00"), []byte("42")}, Begun: true}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Segment
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.lastKey(); len(got) != 2 || got[0] != "\xff\xfe\x00" || got[1] != "42" {
		t.Fatalf("last key after JSON: %q", got)
	}
	var old Segment
	if err := json.Unmarshal([]byte(`{"last":"17","begun":true}`), &old); err != nil {
		t.Fatal(err)
	}
	if got := old.lastKey(); len(got) != 1 || got[0] != "17" {
		t.Fatalf("old state's last key: %q", got)
	}
}
