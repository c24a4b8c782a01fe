package shardrule

import (
	"hash/crc32"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func build(t *testing.T, doc string, n int) (Rule, error) {
	t.Helper()
	var s Spec
	if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
		t.Fatal(err)
	}
	return Build(&s, n, "target")
}

func TestHashRuleIsCRC32ModN(t *testing.T) {
	r := HashRule{N: 4}
	// Known values: CRC32('1') = 2212294583, CRC32('abc') = 891568578,
	// the same figures MariaDB's CRC32() returns.
	cases := []struct {
		key  any
		want int
	}{
		{int64(1), 2212294583 % 4},
		{uint8(1), 2212294583 % 4},
		{[]byte("1"), 2212294583 % 4},
		{"abc", 891568578 % 4},
		{int32(-5), int(crc32.ChecksumIEEE([]byte("-5")) % 4)},
	}
	for _, c := range cases {
		got, err := r.Shard(c.key)
		if err != nil || got != c.want {
			t.Errorf("Shard(%#v) = %d, %v; want %d", c.key, got, err, c.want)
		}
	}
	if _, err := r.Shard(nil); err == nil {
		t.Error("Shard(nil) succeeded; want an error about NULL")
	}
	if got := r.Predicate("`id`", 2); got != "CRC32(`id`) % 4 = 2" {
		t.Errorf("Predicate = %q", got)
	}
}

func TestRangeRule(t *testing.T) {
	r, err := build(t, "{rule: range, ranges: [{shard: 1, from: 100, to: 200}, {shard: 0, to: 100}, {shard: 2, from: 200}]}", 3)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key  any
		want int
	}{{int64(-1 << 62), 0}, {int64(99), 0}, {int64(100), 1}, {uint16(199), 1}, {[]byte("200"), 2}, {uint64(1 << 63), 2}}
	for _, c := range cases {
		if got, err := r.Shard(c.key); err != nil || got != c.want {
			t.Errorf("Shard(%v) = %d, %v; want %d", c.key, got, err, c.want)
		}
	}
	if got := r.Predicate("k", 1); got != "((k >= 100 AND k < 200))" {
		t.Errorf("Predicate = %q", got)
	}
	if _, err := r.Shard(nil); err == nil {
		t.Error("Shard(nil) succeeded; want an error about NULL")
	}
}

func TestListRule(t *testing.T) {
	r, err := build(t, "{rule: list, lists: {0: [us, ca], 1: [de]}}", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Shard("ca"); got != 0 {
		t.Errorf("ca → %d", got)
	}
	if got, _ := r.Shard([]byte("de")); got != 1 {
		t.Errorf("de → %d", got)
	}
	if _, err := r.Shard("fr"); err == nil || !strings.Contains(err.Error(), `"fr" is in no list`) {
		t.Errorf("fr: err %v; want it named as uncovered", err)
	}
	if _, ok := r.(ListRule).Default(); ok {
		t.Error("Default() reports a default the spec does not set")
	}
	if got := r.(ListRule).Listed(); strings.Join(got, ",") != "ca,de,us" {
		t.Errorf("Listed = %v", got)
	}
	d, err := build(t, "{rule: list, lists: {0: [us]}, default: 1}", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Shard("fr"); got != 1 {
		t.Errorf("fr with default 1 → %d", got)
	}
	if got := d.Predicate("k", 1); got != "(NOT (k IN ('us')))" {
		t.Errorf("default Predicate = %q", got)
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name, spec string
		want       string
	}{
		{"gap", "{rule: range, ranges: [{shard: 0, to: 10}, {shard: 1, from: 20}]}", "keys from 10 to 20 uncovered"},
		{"low end", "{rule: range, ranges: [{shard: 0, from: 0, to: 10}, {shard: 1, from: 10}]}", "keys below 0 uncovered"},
		{"high end", "{rule: range, ranges: [{shard: 0, to: 10}, {shard: 1, from: 10, to: 20}]}", "keys from 20 up uncovered"},
		{"overlap", "{rule: range, ranges: [{shard: 0, to: 15}, {shard: 1, from: 10}]}", "overlap"},
		{"mixed bounds", "{rule: range, ranges: [{shard: 0, to: 10}, {shard: 1, from: m}]}", "mix integer and string"},
		{"bad shard", "{rule: list, lists: {5: [x]}}", "names target 5, but there are 2 targets"},
		{"unknown rule", "{rule: modulo}", `rule "modulo": use hash, range or list`},
		{"empty rule", "{}", "rule is empty"},
		{"hash with lists", "{rule: hash, lists: {0: [x]}}", "rule hash takes no"},
		{"listed twice", "{rule: list, lists: {0: [x], 1: [x]}}", `value "x" is listed for targets`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := build(t, c.spec, 2)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want it to contain %q", err, c.want)
			}
		})
	}
}
