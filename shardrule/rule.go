package shardrule

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Spec is a rule as written in a config: the rule's name and its
// parameters. It is inlined in the configs that use rules (a migration
// plan's tables, sink.ownership), next to the column the rule reads.
type Spec struct {
	Rule string `yaml:"rule"` // hash | range | list
	// Ranges (rule range): half-open [from, to) intervals; a missing from
	// or to is unbounded. Together they must cover every key.
	Ranges []RangeSpec `yaml:"ranges"`
	// Lists (rule list): shard index → the key values it holds; Default,
	// when set, takes every other value.
	Lists   map[int][]yaml.Node `yaml:"lists"`
	Default *int                `yaml:"default"`
}

// RangeSpec is one interval of a range rule.
type RangeSpec struct {
	Shard int       `yaml:"shard"`
	From  yaml.Node `yaml:"from"`
	To    yaml.Node `yaml:"to"`
}

// Rule maps a shard-key value to a target index (0-based, the order of the
// plan's targets).
//
// A value is what either side hands over: a binlog image value (sized Go
// integers, string, []byte) or a text-protocol value (int64, uint64,
// []byte). Its canonical text is the decimal form of an integer and the raw
// bytes of a string; every rule works on that text, so both sides agree.
type Rule interface {
	// Shard returns the target index of key, or an error naming the key
	// when no target covers it.
	Shard(key any) (int, error)
	// Predicate returns a SQL condition over column col (already quoted)
	// that holds exactly for the rows shard owns, so verify can count
	// rows sitting on the wrong shard with the server's own functions.
	Predicate(col string, shard int) string
}

// KeyText returns the canonical text of a shard-key value.
func KeyText(v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case []byte:
		return x, true
	case string:
		return []byte(x), true
	case int:
		return strconv.AppendInt(nil, int64(x), 10), true
	case int8:
		return strconv.AppendInt(nil, int64(x), 10), true
	case int16:
		return strconv.AppendInt(nil, int64(x), 10), true
	case int32:
		return strconv.AppendInt(nil, int64(x), 10), true
	case int64:
		return strconv.AppendInt(nil, x, 10), true
	case uint:
		return strconv.AppendUint(nil, uint64(x), 10), true
	case uint8:
		return strconv.AppendUint(nil, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(nil, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(nil, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(nil, x, 10), true
	case float32:
		return strconv.AppendFloat(nil, float64(x), 'f', -1, 32), true
	case float64:
		return strconv.AppendFloat(nil, x, 'f', -1, 64), true
	}
	return []byte(fmt.Sprint(v)), true
}

// HashRule is rule "hash": CRC-32 (IEEE 802.3 polynomial, the function
// zlib, Go's hash/crc32.ChecksumIEEE and MySQL/MariaDB's CRC32() compute) of
// the key's canonical text, mod the number of targets. It is stable across
// versions and languages, and SQL computes the same: CRC32(col) % N.
type HashRule struct{ N int }

// Shard implements Rule.
func (r HashRule) Shard(key any) (int, error) {
	text, ok := KeyText(key)
	if !ok {
		return 0, fmt.Errorf("shard key is NULL: rule hash needs a value (make the column NOT NULL)")
	}
	return int(crc32.ChecksumIEEE(text) % uint32(r.N)), nil
}

// Predicate implements Rule.
func (r HashRule) Predicate(col string, shard int) string {
	return fmt.Sprintf("CRC32(%s) %% %d = %d", col, r.N, shard)
}

// bound is one range boundary: an integer or a string, by the plan's type.
type bound struct {
	set   bool
	isInt bool
	i     int64
	s     []byte
}

func (b bound) sql() string {
	if b.isInt {
		return strconv.FormatInt(b.i, 10)
	}
	return QuoteString(string(b.s))
}

// RangeRule is rule "range": half-open [from, to) intervals, each owned by
// one target. With integer bounds keys compare as integers, otherwise as
// bytes of their canonical text.
type RangeRule struct {
	ranges []rangeEntry // sorted by from
	ints   bool
}

type rangeEntry struct {
	shard    int
	from, to bound
}

// Shard implements Rule.
func (r RangeRule) Shard(key any) (int, error) {
	text, ok := KeyText(key)
	if !ok {
		return 0, fmt.Errorf("shard key is NULL: no range covers NULL")
	}
	for _, e := range r.ranges {
		if (!e.from.set || r.cmp(text, e.from) >= 0) && (!e.to.set || r.cmp(text, e.to) < 0) {
			return e.shard, nil
		}
	}
	return 0, fmt.Errorf("shard key %s is in no range: extend the table's ranges", text)
}

func (r RangeRule) cmp(text []byte, b bound) int {
	if r.ints {
		if v, err := strconv.ParseInt(string(text), 10, 64); err == nil {
			switch {
			case v < b.i:
				return -1
			case v > b.i:
				return 1
			}
			return 0
		}
		if len(text) > 0 && text[0] != '-' {
			return 1 // an unsigned value above MaxInt64
		}
		return -1
	}
	return bytes.Compare(text, b.s)
}

// Predicate implements Rule.
func (r RangeRule) Predicate(col string, shard int) string {
	var parts []string
	for _, e := range r.ranges {
		if e.shard != shard {
			continue
		}
		var c []string
		if e.from.set {
			c = append(c, col+" >= "+e.from.sql())
		}
		if e.to.set {
			c = append(c, col+" < "+e.to.sql())
		}
		if len(c) == 0 {
			c = []string{col + " IS NOT NULL"}
		}
		parts = append(parts, "("+strings.Join(c, " AND ")+")")
	}
	if len(parts) == 0 {
		return "FALSE"
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// ListRule is rule "list": explicit values per target, and an optional
// default target for every other value.
type ListRule struct {
	values  map[string]int // canonical text → shard
	byShard map[int][]string
	def     int // -1: none
}

// Shard implements Rule.
func (r ListRule) Shard(key any) (int, error) {
	text, ok := KeyText(key)
	if !ok {
		return 0, fmt.Errorf("shard key is NULL: no list holds NULL")
	}
	if s, ok := r.values[string(text)]; ok {
		return s, nil
	}
	if r.def >= 0 {
		return r.def, nil
	}
	return 0, fmt.Errorf("shard key %q is in no list: add it to a list or set default", text)
}

// Predicate implements Rule.
func (r ListRule) Predicate(col string, shard int) string {
	in := func(vals []string) string {
		q := make([]string, len(vals))
		for i, v := range vals {
			q[i] = QuoteString(v)
		}
		return col + " IN (" + strings.Join(q, ",") + ")"
	}
	var parts []string
	if vals := r.byShard[shard]; len(vals) > 0 {
		parts = append(parts, in(vals))
	}
	if r.def == shard {
		all := make([]string, 0, len(r.values))
		for v := range r.values {
			all = append(all, v)
		}
		sort.Strings(all)
		if len(all) == 0 {
			parts = append(parts, col+" IS NOT NULL")
		} else {
			parts = append(parts, "NOT ("+in(all)+")")
		}
	}
	if len(parts) == 0 {
		return "FALSE"
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// Default returns the shard that takes every unlisted value, if any.
func (r ListRule) Default() (int, bool) { return r.def, r.def >= 0 }

// Listed returns the explicit values of a list rule (for the coverage
// check against the source's data).
func (r ListRule) Listed() []string {
	out := make([]string, 0, len(r.values))
	for v := range r.values {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Build checks spec and returns its rule over n shards; of names what a
// shard is in messages ("target", "source", "site").
func Build(t *Spec, targets int, of string) (Rule, error) {
	checkShard := func(what string, s int) error {
		if s < 0 || s >= targets {
			return fmt.Errorf("%s names %s %d, but there are %d %ss (0..%d)", what, of, s, targets, of, targets-1)
		}
		return nil
	}
	if targets == 0 {
		return nil, fmt.Errorf("no %ss", of)
	}
	switch t.Rule {
	case "hash":
		if len(t.Ranges) > 0 || len(t.Lists) > 0 || t.Default != nil {
			return nil, fmt.Errorf("rule hash takes no ranges, lists or default: remove them")
		}
		return HashRule{N: targets}, nil
	case "range":
		if len(t.Lists) > 0 || t.Default != nil {
			return nil, fmt.Errorf("rule range takes no lists or default: remove them")
		}
		return buildRange(t.Ranges, checkShard)
	case "list":
		if len(t.Ranges) > 0 {
			return nil, fmt.Errorf("rule list takes no ranges: remove them")
		}
		r := ListRule{values: map[string]int{}, byShard: map[int][]string{}, def: -1}
		if t.Default != nil {
			if err := checkShard("default", *t.Default); err != nil {
				return nil, err
			}
			r.def = *t.Default
		}
		if len(t.Lists) == 0 {
			return nil, fmt.Errorf("rule list has no lists: set lists: {0: [values...], ...}")
		}
		for shard, nodes := range t.Lists {
			if err := checkShard(fmt.Sprintf("lists[%d]", shard), shard); err != nil {
				return nil, err
			}
			for _, n := range nodes {
				if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
					return nil, fmt.Errorf("lists[%d] holds a non-scalar value at line %d", shard, n.Line)
				}
				if prev, dup := r.values[n.Value]; dup {
					return nil, fmt.Errorf("value %q is listed for targets %d and %d: list it once", n.Value, prev, shard)
				}
				r.values[n.Value] = shard
				r.byShard[shard] = append(r.byShard[shard], n.Value)
			}
		}
		return r, nil
	case "":
		return nil, fmt.Errorf("rule is empty: use hash, range or list")
	}
	return nil, fmt.Errorf("rule %q: use hash, range or list", t.Rule)
}

func buildRange(specs []RangeSpec, checkShard func(string, int) error) (Rule, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("rule range has no ranges: set ranges: [{shard: 0, to: X}, {shard: 1, from: X}]")
	}
	r := RangeRule{}
	kinds := map[bool]bool{}
	parse := func(n *yaml.Node) (bound, error) {
		if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
			return bound{}, nil
		}
		if n.Kind != yaml.ScalarNode {
			return bound{}, fmt.Errorf("line %d: a bound is a number or a string", n.Line)
		}
		if n.Tag == "!!int" {
			v, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				return bound{}, fmt.Errorf("line %d: bound %s: %v", n.Line, n.Value, err)
			}
			kinds[true] = true
			return bound{set: true, isInt: true, i: v}, nil
		}
		kinds[false] = true
		return bound{set: true, s: []byte(n.Value)}, nil
	}
	for i, s := range specs {
		if err := checkShard(fmt.Sprintf("ranges[%d]", i), s.Shard); err != nil {
			return nil, err
		}
		from, err := parse(&s.From)
		if err != nil {
			return nil, fmt.Errorf("ranges[%d].from %v", i, err)
		}
		to, err := parse(&s.To)
		if err != nil {
			return nil, fmt.Errorf("ranges[%d].to %v", i, err)
		}
		r.ranges = append(r.ranges, rangeEntry{shard: s.Shard, from: from, to: to})
	}
	if len(kinds) > 1 {
		return nil, fmt.Errorf("ranges mix integer and string bounds: use one kind")
	}
	r.ints = kinds[true]
	less := func(a, b bound) int { // a lower bound; unset is -inf
		switch {
		case !a.set && !b.set:
			return 0
		case !a.set:
			return -1
		case !b.set:
			return 1
		case r.ints:
			switch {
			case a.i < b.i:
				return -1
			case a.i > b.i:
				return 1
			}
			return 0
		}
		return bytes.Compare(a.s, b.s)
	}
	sort.SliceStable(r.ranges, func(i, j int) bool { return less(r.ranges[i].from, r.ranges[j].from) < 0 })
	// Coverage: the first range starts at -inf, each next one starts where
	// the previous ends, the last ends at +inf. Anything else leaves keys
	// uncovered (a gap) or owned twice (an overlap): both are errors.
	show := func(b bound) string {
		if r.ints {
			return strconv.FormatInt(b.i, 10)
		}
		return strconv.Quote(string(b.s))
	}
	if first := r.ranges[0]; first.from.set {
		return nil, fmt.Errorf("ranges leave keys below %s uncovered: drop from on the lowest range", show(first.from))
	}
	for i := 0; i < len(r.ranges)-1; i++ {
		cur, next := r.ranges[i], r.ranges[i+1]
		if !cur.to.set {
			return nil, fmt.Errorf("ranges overlap: the range of target %d is unbounded above but another starts at %s", cur.shard, show(next.from))
		}
		if c := less(cur.to, next.from); c < 0 {
			return nil, fmt.Errorf("ranges leave keys from %s to %s uncovered: make the next range start at %s", show(cur.to), show(next.from), show(cur.to))
		} else if c > 0 {
			return nil, fmt.Errorf("ranges overlap between %s and %s: make the next range start at %s", show(next.from), show(cur.to), show(cur.to))
		}
		if cur.from.set && less(cur.from, cur.to) >= 0 {
			return nil, fmt.Errorf("range [%s, %s) is empty: from must be below to", show(cur.from), show(cur.to))
		}
	}
	if last := r.ranges[len(r.ranges)-1]; last.to.set {
		return nil, fmt.Errorf("ranges leave keys from %s up uncovered: drop to on the highest range", show(last.to))
	}
	return r, nil
}

// QuoteString returns s as a SQL string literal with backslash escapes,
// for sessions that set their own sql_mode, never NO_BACKSLASH_ESCAPES
// (those that run the rules' predicates, and resharding's).
func QuoteString(s string) string {
	return "'" + escape(s) + "'"
}

func escape(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
