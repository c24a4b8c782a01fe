package redisrepl

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPositionCodec(t *testing.T) {
	rid := strings.Repeat("ab", 20)
	for _, tc := range []struct {
		name string
		p    Position
	}{
		{"stream", Position{ReplID: rid, Offset: 1234, Epoch: rid + ":0", DB: 3}},
		{"snapshot", Position{ReplID: rid, Offset: 0, Epoch: "x:1", DB: -1, Snapshot: true}},
		{"big offset", Position{ReplID: rid, Offset: 1<<62 + 5, Epoch: "e", DB: 15}},
		{"escaped epoch", Position{ReplID: rid, Offset: 9, Epoch: `a"b\<c>`, DB: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := EncodePosition(tc.p)
			want, _ := json.Marshal(tc.p)
			if string(enc) != string(want) {
				t.Errorf("EncodePosition = %s, json.Marshal = %s", enc, want)
			}
			if got := NewEncoder(tc.p.ReplID, tc.p.Epoch).encode(tc.p.Offset, tc.p.DB, tc.p.Snapshot); string(got) != string(want) {
				t.Errorf("Encoder = %s, want %s", got, want)
			}
			got, err := DecodePosition(enc)
			if err != nil || got != tc.p {
				t.Fatalf("round trip: %+v, %v", got, err)
			}
		})
	}
}

// TestDecodeOtherForms: what encoding/json accepts (another field order,
// spaces) decodes through the fallback, with the same checks.
func TestDecodeOtherForms(t *testing.T) {
	rid := strings.Repeat("c", 40)
	want := Position{ReplID: rid, Offset: 7, Epoch: "e:1", DB: 2, Snapshot: true}
	for _, s := range []string{
		`{"epoch":"e:1","replid":"` + rid + `","db":2,"offset":7,"snapshot":true}`,
		`{ "replid": "` + rid + `", "offset": 7, "epoch": "e:1", "db": 2, "snapshot": true }`,
		`{"replid":"` + rid + `","offset":7,"epoch":"e\u003a1","db":2,"snapshot":true}`,
	} {
		got, err := DecodePosition([]byte(s))
		if err != nil || got != want {
			t.Errorf("DecodePosition(%s) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, bad := range []string{"", `{"gtid":"0-1-2"}`, `{"replid":"short","offset":1,"epoch":"e","db":0}`, `not json`,
		`{"replid":"` + rid + `","offset":-1,"epoch":"e","db":0}`, `{"replid":"` + rid + `","offset":01,"epoch":"e","db":0}`,
		`{"replid":"` + rid + `","offset":1,"epoch":"","db":0}`, `{"replid":"` + rid + `","offset":1,"epoch":"e","db":0}x`} {
		if p, err := DecodePosition([]byte(bad)); err == nil {
			t.Errorf("DecodePosition(%q) = %+v, no error", bad, p)
		}
	}
}

func TestSlot(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]int{"123456789": 0x31C3 & (SlotCount - 1), "foo": 12182, "bar": 5061,
		"{user1000}.following": 3443, "{user1000}.followers": 3443, "foo{}{bar}": 8363, "": 0} {
		if got := Slot([]byte(key)); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	if got := string(SlotTag([]byte("foo"))); got != "slot 12182" {
		t.Errorf("SlotTag(foo) = %q", got)
	}
	if got := string(TagOf(SlotCount - 1)); got != "slot 16383" {
		t.Errorf("TagOf(16383) = %q", got)
	}
}

func BenchmarkEncode(b *testing.B) {
	enc := NewEncoder(strings.Repeat("ab", 20), strings.Repeat("ab", 20)+":0")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = enc.Encode(int64(i)*37, 0)
	}
}

func BenchmarkDecode(b *testing.B) {
	pos := EncodePosition(Position{ReplID: strings.Repeat("ab", 20), Offset: 123456789, Epoch: strings.Repeat("ab", 20) + ":0"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodePosition(pos); err != nil {
			b.Fatal(err)
		}
	}
}
