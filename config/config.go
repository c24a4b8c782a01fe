package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hamal-replication/hamal/dag"
)

// Config is one channel: one source, one sink.
type Config struct {
	Name       string     `yaml:"name"`
	Source     Source     `yaml:"source"`
	Sink       Sink       `yaml:"sink"`
	Apply      Apply      `yaml:"apply"`
	Checkpoint Checkpoint `yaml:"checkpoint"`
	Admin      Admin      `yaml:"admin"`
	Log        Log        `yaml:"log"`
	Relay      *Relay     `yaml:"relay"` // config/relay.go; nil: no relay
}

// Source is the upstream Hamal reads from: the keys every engine's source
// has, and the engine's own (Engine).
type Source struct {
	Kind string `yaml:"kind"`
	// Site names the source's site for the loop guard (with sink.site).
	Site string `yaml:"site"`
	// Forward is "all" (default: local writes and ones this site relays)
	// or "local" (only writes made at this site; for a full mesh).
	Forward string `yaml:"forward"`
	// Engine is the rest of the source mapping: the keys of source.kind's
	// engine, decoded into the block its driver gives (Kinds.SourceBlock)
	// and validated by it.
	Engine Block `yaml:"-"`
}

// Sink is the target Hamal applies to: the keys every engine's sink has,
// and the engine's own (Engine).
type Sink struct {
	Kind string `yaml:"kind"`
	// Site names the target's site: set, the sink marks each transaction
	// with its origin and the channel drops echoes (with source.site).
	Site string `yaml:"site"`
	// Engine is the rest of the sink mapping: the keys of sink.kind's
	// engine (Kinds.SinkBlock).
	Engine Block `yaml:"-"`
}

// Apply tunes the parallel applier.
type Apply struct {
	Workers     int   `yaml:"workers"`      // concurrent target transactions
	BatchTxns   int   `yaml:"batch_txns"`   // max source Txns coalesced into one target transaction
	BatchBytes  int   `yaml:"batch_bytes"`  // max bytes of one coalesced batch
	WindowTxns  int   `yaml:"window_txns"`  // max Txns read ahead of the applier
	WindowBytes int64 `yaml:"window_bytes"` // max bytes read ahead of the applier
	// BatchLinger is how long a worker waits for a full batch while other
	// workers are applying (dag.Options.Linger); nil: DefaultBatchLinger,
	// 0: never wait.
	BatchLinger *time.Duration `yaml:"batch_linger"`
}

// Linger is apply.batch_linger with its default.
func (a Apply) Linger() time.Duration {
	if a.BatchLinger == nil {
		return DefaultBatchLinger
	}
	return *a.BatchLinger
}

// Window is the DAG's read-ahead window these settings ask for, with the
// defaults for those left out.
func (a Apply) Window() dag.Options {
	w := dag.Options{MaxTxns: a.WindowTxns, MaxBytes: a.WindowBytes, Linger: a.Linger()}
	if w.MaxTxns <= 0 {
		w.MaxTxns = DefaultWindowTxns
	}
	if w.MaxBytes <= 0 {
		w.MaxBytes = DefaultWindowBytes
	}
	return w
}

// CheckLinger reports an apply.batch_linger outside 0s..1s.
func (a Apply) CheckLinger() error {
	if l := a.BatchLinger; l != nil && (*l < 0 || *l > time.Second) {
		return fmt.Errorf("apply.batch_linger: %s is out of range 0s..1s (0s: never wait for a fuller batch)", *l)
	}
	return nil
}

// Checkpoint says where and how often the resume position is persisted.
type Checkpoint struct {
	Dir      string        `yaml:"dir"`
	Interval time.Duration `yaml:"interval"`
}

// Admin configures the HTTP admin endpoint.
type Admin struct {
	// Listen is host:port, loopback by default; "off" disables. An
	// address that is not loopback needs a token.
	Listen string `yaml:"listen"`
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// the mutating endpoints (POST /pause, /resume), and shows error texts
	// with their row data; TokenFile reads it from a file.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// Pprof serves net/http/pprof under /debug/pprof/ (off by default):
	// on a loopback listener, or beyond it to the token's holders only.
	Pprof bool `yaml:"pprof"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Defaults.
const (
	DefaultWorkers    = 16
	DefaultBatchTxns  = 256
	DefaultBatchBytes = 4 << 20
	DefaultWindowTxns = 20000
	// DefaultWindowBytes bounds the heap of the read-ahead window
	// (event.Txn.SizeBytes); with it, replicating a 1M-row transaction
	// peaked at 390 MiB RSS in the bench (128 MiB: 552 MiB), and no
	// catch-up workload filled it (20,000 W2 Txns take about 52 MiB).
	DefaultWindowBytes = 64 << 20
	// DefaultBatchLinger: under load, waiting up to 5 ms for a fuller
	// batch made catch-up 8-36 % faster in the MySQL bench (fewer, larger
	// target transactions); an idle channel never waits
	// (docs/performance.md).
	DefaultBatchLinger = 5 * time.Millisecond
	DefaultInterval    = time.Second
	DefaultAdminListen = "127.0.0.1:9650"
)

// Load reads, expands, decodes and validates a config file; kinds gives
// the blocks of source.kind's and sink.kind's engines.
func Load(path string, kinds Kinds) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data, kinds)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes and validates config text. Relative *_file paths and
// checkpoint.dir stay as written: relative to the working directory, as an
// operator running the binary expects.
//
// The source and sink mappings hold the generic keys (Source, Sink) and
// their engine's: both are checked against the union of the two, and the
// mapping is decoded twice, into the generic struct and into the engine's
// block. Every problem is reported at once, each naming its key.
func Parse(data []byte, kinds Kinds) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("empty config")
	}
	doc := root.Content[0]
	var problems []string
	expandEnv(doc, "", &problems)
	sides := []*side{
		{key: "source", role: "source", generic: reflect.TypeOf(Source{}), block: kinds.SourceBlock},
		{key: "sink", role: "sink", generic: reflect.TypeOf(Sink{}), block: kinds.SinkBlock},
	}
	var kindProblems []string
	for _, sd := range sides {
		if p := sd.resolve(doc); p != "" {
			kindProblems = append(kindProblems, p)
		}
	}
	checkKeys(doc, reflect.TypeOf(Config{}), "", &problems, sides)
	if len(problems) > 0 {
		return nil, joinProblems(append(problems, kindProblems...))
	}
	var cfg Config
	if err := doc.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	for _, sd := range sides {
		if sd.engine == nil {
			continue
		}
		if sd.node != nil {
			if err := sd.node.Decode(sd.engine); err != nil {
				return nil, fmt.Errorf("decode: %w", err)
			}
		}
	}
	cfg.Source.Engine, cfg.Sink.Engine = sides[0].engine, sides[1].engine
	if p := append(kindProblems, cfg.problems(true)...); len(p) > 0 {
		return nil, joinProblems(p)
	}
	return &cfg, nil
}

// side is the source or sink mapping while it is parsed.
type side struct {
	key, role string
	generic   reflect.Type
	block     func(kind string) (Block, error)

	node   *yaml.Node // the mapping; nil when the key is absent
	kind   string
	engine Block // nil when the kind has no block
}

// resolve finds the side's mapping and its engine's block; it returns the
// kind's problem, if any.
func (sd *side) resolve(doc *yaml.Node) string {
	sd.node = mappingValue(doc, sd.key)
	if sd.node != nil {
		if k := mappingValue(sd.node, "kind"); k != nil && k.Kind == yaml.ScalarNode {
			sd.kind = k.Value
		}
	}
	b, err := sd.block(sd.kind)
	if err != nil {
		return fmt.Sprintf("%s.kind: %v", sd.key, err)
	}
	sd.engine = b
	return ""
}

// mappingValue returns the value of key in mapping n, nil when n is not a
// mapping or has no such key.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// yamlFields maps the yaml keys of struct type t to their fields' types,
// with the keys of ",inline" fields merged in.
func yamlFields(t reflect.Type, fields map[string]reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(opts, "inline") {
			yamlFields(f.Type, fields)
			continue
		}
		if name == "" {
			continue
		}
		fields[name] = f.Type
	}
}

// checkKeys walks the YAML tree against the struct's yaml tags and reports
// every unknown key with its full path. At the source and sink mappings
// the known keys are the generic ones and those of the side's engine; a
// side whose kind has no engine is not checked (its kind's problem says
// why).
func checkKeys(n *yaml.Node, t reflect.Type, path string, problems *[]string, sides []*side) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(time.Duration(0)) || t == reflect.TypeOf(yaml.Node{}) {
			return // a value of any shape (a shardrule bound or list value)
		}
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return
			}
			*problems = append(*problems, fmt.Sprintf("%s: expected a mapping (line %d)", orRoot(path), n.Line))
			return
		}
		fields := map[string]reflect.Type{}
		yamlFields(t, fields)
		what := ""
		for _, sd := range sides {
			if path == sd.key && t == sd.generic {
				if sd.engine == nil {
					return
				}
				yamlFields(reflect.TypeOf(sd.engine), fields)
				what = fmt.Sprintf(" for a %s %s", sd.kind, sd.role)
			}
		}
		names := make([]string, 0, len(fields))
		for name := range fields {
			names = append(names, name)
		}
		sort.Strings(names)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			child := join(path, key)
			ft, ok := fields[key]
			if !ok {
				msg := fmt.Sprintf("%s: unknown key%s (line %d)", child, what, n.Content[i].Line)
				if s := Suggest(key, names); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", join(path, s))
				} else {
					msg += "; known keys here: " + strings.Join(names, ", ")
				}
				*problems = append(*problems, msg)
				continue
			}
			checkKeys(n.Content[i+1], ft, child, problems, sides)
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), problems, nil)
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems, nil)
			}
		}
	}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv replaces ${VAR} and ${VAR:-default} in scalar values. An unset
// variable without a default is an error naming the key and the variable.
func expandEnv(n *yaml.Node, path string, problems *[]string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], join(path, n.Content[i].Value), problems)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, fmt.Sprintf("%s[%d]", path, i), problems)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			m := envRef.FindStringSubmatch(ref)
			if v, ok := os.LookupEnv(m[1]); ok {
				return v
			}
			if m[2] != "" {
				return m[3]
			}
			*problems = append(*problems, fmt.Sprintf("%s: environment variable %s is not set (line %d); export it, or write ${%s:-default}", path, m[1], n.Line, m[1]))
			return ""
		})
		// An expanded value is always a string (a password "123" stays a
		// string; numbers written literally are not affected).
		if n.Tag == "!!int" || n.Tag == "!!float" || n.Tag == "!!bool" || n.Tag == "!!null" {
			n.Tag = "!!str"
		}
		n.Style = yaml.DoubleQuotedStyle
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// Suggest returns the name closest to key, if one is close enough to be
// what was meant (an edit distance below 3), else "".
func Suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(key, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
