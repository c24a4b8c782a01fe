package tablecopy

import (
	"encoding/json"
	"testing"
)

func TestKeysetSQL(t *testing.T) {
	one := Key{Columns: []KeyColumn{{Name: "id", kind: literalInt}}}
	two := Key{Columns: []KeyColumn{{Name: "tenant", kind: literalText, cs: "latin1"}, {Name: "id", kind: literalInt}}}
	three := Key{Columns: []KeyColumn{{Name: "a", kind: literalInt}, {Name: "b", kind: literalInt}, {Name: "c", kind: literalInt}}}
	cases := []struct {
		name      string
		got, want string
	}{
		{"after, one column", one.After([]string{"7"}), "`id` > 7"},
		{"at most, one column", one.AtMost([]string{"7"}), "`id` <= 7"},
		{"after, text in its charset", two.After([]string{"x'\xe9", "5"}),
			"`tenant` >= _latin1 X'7827e9' AND (`tenant` > _latin1 X'7827e9' OR (`tenant` = _latin1 X'7827e9' AND (`id` > 5)))"},
		{"at most, composite", two.AtMost([]string{"b", "9"}),
			"`tenant` <= _latin1 X'62' AND (`tenant` < _latin1 X'62' OR (`tenant` = _latin1 X'62' AND (`id` <= 9)))"},
		{"after, three columns", three.After([]string{"1", "2", "3"}), "`a` >= 1 AND (`a` > 1 OR (`a` = 1 AND (`b` > 2 OR (`b` = 2 AND (`c` > 3)))))"},
		{"list", two.List(), "`tenant`,`id`"},
		{"open range", two.RangeWhere(nil, nil), ""},
		{"closed range", one.RangeWhere([]string{"1"}, []string{"9"}), " WHERE (`id` > 1) AND (`id` <= 9)"},
		{"range open below", one.RangeWhere(nil, []string{"9"}), " WHERE (`id` <= 9)"},
		{"binary key", Key{Columns: []KeyColumn{{Name: "h", kind: literalBinary}}}.After([]string{"\xff\x00'"}), "`h` > X'ff0027'"},
		{"decimal key", Key{Columns: []KeyColumn{{Name: "d", kind: literalQuoted}}}.After([]string{"1.50"}), "`d` > '1.50'"},
		{"show one", ShowKey([]string{"7"}), "7"},
		{"show composite", ShowKey([]string{"eu", "7"}), "(eu, 7)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("\n got %s\nwant %s", c.got, c.want)
			}
		})
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
	if got := out.LastKeyText(); len(got) != 2 || got[0] != "\xff\xfe\x00" || got[1] != "42" {
		t.Fatalf("last key after JSON: %q", got)
	}
	var old Segment
	if err := json.Unmarshal([]byte(`{"last":"17","begun":true}`), &old); err != nil {
		t.Fatal(err)
	}
	if got := old.LastKeyText(); len(got) != 1 || got[0] != "17" {
		t.Fatalf("old state's last key: %q", got)
	}
}
