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

// Source names the upstream Hamal reads as a replica.
type Source struct {
	Kind         string   `yaml:"kind"` // mysql
	Addr         string   `yaml:"addr"`
	User         string   `yaml:"user"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	ServerID     uint32   `yaml:"server_id"`
	Flavor       string   `yaml:"flavor"` // mysql | mariadb | "" (auto)
	Start        string   `yaml:"start"`  // snapshot | current | earliest | GTID set | file:pos
	Tables       []string `yaml:"tables"`
	Exclude      []string `yaml:"exclude"`
	// Site names the source's site for the loop guard (with sink.site).
	Site string `yaml:"site"`
	// Forward is "all" (default: local writes and ones this site relays)
	// or "local" (only writes made at this site; for a full mesh).
	Forward string `yaml:"forward"`
	// HamalSchema is where the sink of the previous hop keeps its markers.
	HamalSchema string `yaml:"hamal_schema"`

	TLS       TLS       `yaml:"tls"`       // ops.go
	Heartbeat Heartbeat `yaml:"heartbeat"` // ops.go
	// Snapshot tunes the copy of start: snapshot (config/mysql.go).
	Snapshot SnapshotCopy `yaml:"snapshot"`

	// Kind-specific blocks, one per engine (see the engine's config file).
	Kafka *KafkaSource `yaml:"kafka"` // config/kafka.go
	Redis *RedisSource `yaml:"redis"` // config/redis.go
	Mongo *MongoSource `yaml:"mongo"` // config/mongo.go
}

// Sink names the target Hamal applies to.
type Sink struct {
	Kind               string   `yaml:"kind"` // mysql
	Addr               string   `yaml:"addr"`
	User               string   `yaml:"user"`
	Password           string   `yaml:"password"`
	PasswordFile       string   `yaml:"password_file"`
	AllowKeylessTables []string `yaml:"allow_keyless_tables"`
	// Site names the target's site: set, the sink stamps each transaction
	// with an origin marker and the channel drops echoes (with source.site).
	Site string `yaml:"site"`
	// HamalSchema is the target schema for Hamal's own tables.
	HamalSchema string `yaml:"hamal_schema"`
	// Conflicts sets how changes made at both sites at once are resolved
	// (with sink.site).
	Conflicts Conflicts `yaml:"conflicts"`
	// Unsynced maps "schema.table" to its owner column: applied writes clear
	// their owners' entries in <hamal_schema>.unsynced (with sink.site).
	Unsynced map[string]string `yaml:"unsynced"`
	// CreateTables creates the schemas and tables the target lacks from
	// the source's definitions (source.start: snapshot; default true
	// there, refused with any other start).
	CreateTables *bool `yaml:"create_tables"`

	TLS TLS `yaml:"tls"` // ops.go

	// Kind-specific blocks, one per engine (see the engine's config file).
	Kafka *KafkaSink `yaml:"kafka"` // config/kafka.go
	Mongo *MongoSink `yaml:"mongo"` // config/mongo.go
}

// Conflicts holds the default conflict policy and per-table overrides.
type Conflicts struct {
	Default string                   `yaml:"default"` // source-wins | target-wins | last-writer-wins
	Tables  map[string]ConflictTable `yaml:"tables"`  // by "schema.table"
}

// ConflictTable is one table's conflict policy.
type ConflictTable struct {
	Policy string `yaml:"policy"`
	Column string `yaml:"column"` // for last-writer-wins: the timestamp or version column
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
	Listen string `yaml:"listen"` // host:port; loopback by default; "off" disables
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// the mutating endpoints (POST /pause, /resume).
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
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
	DefaultHamalSchema = "hamal"
)

// Load reads, expands, decodes and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes and validates config text. Relative *_file paths and
// checkpoint.dir stay as written: relative to the working directory, as an
// operator running the binary expects.
func Parse(data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("empty config")
	}
	var problems []string
	checkKeys(root.Content[0], reflect.TypeOf(Config{}), "", &problems)
	expandEnv(root.Content[0], "", &problems)
	if len(problems) > 0 {
		return nil, joinProblems(problems)
	}
	var cfg Config
	if err := root.Content[0].Decode(&cfg); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// checkKeys walks the YAML tree against the struct's yaml tags and reports
// every unknown key with its full path.
func checkKeys(n *yaml.Node, t reflect.Type, path string, problems *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(time.Duration(0)) {
			return
		}
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return
			}
			*problems = append(*problems, fmt.Sprintf("%s: expected a mapping (line %d)", orRoot(path), n.Line))
			return
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f
			names = append(names, name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			child := join(path, key)
			f, ok := fields[key]
			if !ok {
				msg := fmt.Sprintf("%s: unknown key (line %d)", child, n.Content[i].Line)
				if s := suggest(key, names); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", join(path, s))
				} else {
					sort.Strings(names)
					msg += "; known keys here: " + strings.Join(names, ", ")
				}
				*problems = append(*problems, msg)
				continue
			}
			checkKeys(n.Content[i+1], f.Type, child, problems)
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), problems)
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
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

// suggest returns the known name closest to key, if it is close.
func suggest(key string, names []string) string {
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

func joinProblems(problems []string) error {
	if len(problems) == 1 {
		return errors.New(problems[0])
	}
	return errors.New(strings.Join(problems, "\n  "))
}
