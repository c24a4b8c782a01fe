package reshard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hamal-replication/hamal/config"
	enginemysql "github.com/hamal-replication/hamal/engine/mysql"
	"github.com/hamal-replication/hamal/shardrule"
)

// Plan is one migration, as the plan file states it.
type Plan struct {
	// Name identifies the migration: its state keys (migration/<name>/…),
	// its channels (migrate-<name>-…) and its fencing leases.
	Name string `yaml:"name"`
	// StateDir is the Pebble directory holding the migration's state and
	// its catch-up checkpoints. Restarting with the same plan and state
	// dir resumes where the migration stopped.
	StateDir string   `yaml:"state_dir"`
	Admin    Admin    `yaml:"admin"`
	Sources  []Server `yaml:"sources"`
	Targets  []Server `yaml:"targets"`
	Tables   []Table  `yaml:"tables"`
	Copy     Copy     `yaml:"copy"`
	Verify   Verify   `yaml:"verify"`
	Cutover  Cutover  `yaml:"cutover"`
	Apply    Apply    `yaml:"apply"`
	// AutoIncrement keeps new rows on different targets from taking the
	// same AUTO_INCREMENT value after the cut-over.
	AutoIncrement AutoIncrement `yaml:"auto_increment"`
	// Sites name the two sides for the loop guard (defaults "source" and
	// "target"); markers go to the hamal schema on both sides.
	Sites Sites `yaml:"sites"`
	// Conflicts are the conflict policies of the reverse replication's
	// sinks (on the sources, after the cut-over), as a channel's
	// sink.conflicts: "source" there is the channel's source, the targets.
	Conflicts enginemysql.Conflicts `yaml:"conflicts"`
}

// Admin is the migration process's HTTP API (status, cutover, cancel).
type Admin struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9660
	// Token is required on the POST endpoints; without one the listener
	// must be loopback. TokenFile reads it from a file.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// Server is one MySQL/MariaDB shard: the MySQL driver's connection keys
// (addr, user, password / password_file, tls), so a migration reaches its
// servers as a channel does, TLS included.
type Server struct {
	enginemysql.Conn `yaml:",inline"`
	// ServerID is the replica server_id the catch-up (for a source) or the
	// reverse replication (for a target) registers with on this server.
	ServerID uint32 `yaml:"server_id"`
}

// Table is one table to move and how to route its rows.
type Table struct {
	Name string `yaml:"name"` // "schema.table" on the sources
	// RuleSpec (shard_key, rule, ranges, lists, default) routes the
	// table's rows to the targets.
	RuleSpec `yaml:",inline"`
	// Rename, when set, is "schema.table" on the targets.
	Rename string `yaml:"rename"`
	// SourceRule, for several sources, says how the sources themselves
	// are sharded (the shard numbers are indexes into sources). Reverse
	// replication after a merge's cut-over routes by it; without it a
	// merge cannot be rolled back after the cut-over.
	SourceRule *RuleSpec `yaml:"source_rule"`

	rule       shardrule.Rule
	sourceRule shardrule.Rule
}

// RuleSpec is a shard key and the rule that maps its values to shards
// (package shardrule: hash, range or list).
type RuleSpec struct {
	ShardKey       string `yaml:"shard_key"` // the column the rule reads
	shardrule.Spec `yaml:",inline"`
}

// Copy tunes the copy phase.
type Copy struct {
	Workers          int `yaml:"workers"`             // parallel chunk copiers (default 4)
	ChunkRows        int `yaml:"chunk_rows"`          // rows per read; one multi-row write per target (default 10000)
	MaxRowsPerSecond int `yaml:"max_rows_per_second"` // 0: unlimited
	// MaxThreadsRunning pauses the copy while the source's Threads_running
	// is above it (0: off).
	MaxThreadsRunning int `yaml:"max_threads_running"`
	// MaxReplicaLag pauses the copy while the source, itself a replica,
	// lags its primary by more than this (0: off).
	MaxReplicaLag time.Duration `yaml:"max_replica_lag"`
}

// Verify tunes the verify phase.
type Verify struct {
	ChunkRows int `yaml:"chunk_rows"` // default 2000
	// Rechecks is how often a mismatching chunk is compared again after
	// RecheckDelay (writes continue, so a chunk may differ only by lag).
	Rechecks     int           `yaml:"rechecks"`      // default 3
	RecheckDelay time.Duration `yaml:"recheck_delay"` // default 2s
}

// Cutover tunes the cut-over.
type Cutover struct {
	// Fence is "read_only" (SET GLOBAL read_only=1 on every source) or
	// "hook" (run FenceHook / UnfenceHook).
	Fence       string        `yaml:"fence"`
	FenceHook   string        `yaml:"fence_hook"`
	UnfenceHook string        `yaml:"unfence_hook"`
	Timeout     time.Duration `yaml:"timeout"` // wait for the targets to catch up (default 5m)
	// ReadOnlyBypass is what the cut-over does about accounts on a source
	// that can write through read_only (READ_ONLY ADMIN, SUPER) other than
	// the plan's own users and BypassAllow: "refuse" (the default: the
	// cut-over fails naming them), "fence" (lock the accounts and kill
	// their sessions for as long as the sources are fenced) or "warn".
	ReadOnlyBypass string `yaml:"read_only_bypass"`
	// BypassAllow lists accounts ("user" for any host, or "user@host")
	// that may keep writing through read_only: warned about, never fenced.
	BypassAllow []string `yaml:"bypass_allow"`
}

// Read-only bypass policies of the cut-over.
const (
	BypassRefuse = "refuse"
	BypassFence  = "fence"
	BypassWarn   = "warn"
)

// AutoIncrement makes the targets' AUTO_INCREMENT values disjoint.
type AutoIncrement struct {
	// Stagger, at the switch, sets on target j
	// auto_increment_increment = len(targets) (or Increment) and
	// auto_increment_offset = j+1 (SET GLOBAL: put the same in each
	// target's server config so a restart keeps it).
	Stagger   bool `yaml:"stagger"`
	Increment int  `yaml:"increment"`
}

// Apply tunes the catch-up and reverse channels.
type Apply struct {
	Workers int `yaml:"workers"` // per channel (default 8)
	// BatchLinger is the daemon's apply.batch_linger for these channels:
	// while other workers apply, wait this long for a full batch (nil:
	// config.DefaultBatchLinger; 0: never wait).
	BatchLinger *time.Duration `yaml:"batch_linger"`
}

// daemon is these settings as the daemon's apply section, whose defaults
// and checks the channels share.
func (a Apply) daemon() config.Apply {
	return config.Apply{BatchLinger: a.BatchLinger}
}

// Sites names the loop-guard sites.
type Sites struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
}

// Load reads and parses a plan file.
func Load(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", path, err)
	}
	return p, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse decodes a plan strictly (an unknown key is an error naming it),
// expands ${VAR} in passwords, reads password files, fills defaults and
// validates it.
func Parse(data []byte) (*Plan, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Plan
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty plan")
		}
		return nil, fmt.Errorf("%v (check the key's spelling against docs/migrate.md)", err)
	}
	var problems []string
	expand := func(what, s string) string {
		return envRef.ReplaceAllStringFunc(s, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := os.LookupEnv(name)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: environment variable %s is not set", what, name))
			}
			return v
		})
	}
	for i := range p.Sources {
		p.Sources[i].Password = expand(fmt.Sprintf("sources[%d].password", i), p.Sources[i].Password)
	}
	for i := range p.Targets {
		p.Targets[i].Password = expand(fmt.Sprintf("targets[%d].password", i), p.Targets[i].Password)
	}
	p.Admin.Token = expand("admin.token", p.Admin.Token)
	if len(problems) == 0 {
		problems = p.validate()
	}
	if len(problems) > 0 {
		return nil, errors.New("invalid plan:\n  - " + strings.Join(problems, "\n  - "))
	}
	return &p, nil
}

var planName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)

func (p *Plan) validate() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !planName.MatchString(p.Name) {
		add("name %q: use 1-40 letters, digits, '_' or '-'", p.Name)
	}
	if p.StateDir == "" {
		add("state_dir is empty: set it to a directory for the migration's state (kept until the migration is complete)")
	}
	if p.Admin.Listen == "" {
		p.Admin.Listen = "127.0.0.1:9660"
	}
	if p.Admin.TokenFile != "" {
		if p.Admin.Token != "" {
			add("admin.token and admin.token_file are both set; keep one")
		} else if b, err := os.ReadFile(p.Admin.TokenFile); err != nil {
			add("admin.token_file: %v", err)
		} else if p.Admin.Token = strings.TrimSpace(string(b)); p.Admin.Token == "" {
			add("admin.token_file: %s is empty", p.Admin.TokenFile)
		}
	}
	if p.Admin.Token == "" && p.Admin.TokenFile == "" && !config.IsLoopback(p.Admin.Listen) {
		add("admin.listen %s is not a loopback address and no admin.token is set, so anyone who can reach the port could cut over, cancel (roll back) or complete the migration; set admin.token_file (a file holding a long random token), or listen on 127.0.0.1", p.Admin.Listen)
	}
	if len(p.Sources) == 0 {
		add("sources is empty: list the shard(s) to move from")
	}
	if len(p.Targets) == 0 {
		add("targets is empty: list the shard(s) to move to")
	}
	seen := map[string]string{}
	check := func(what string, s *Server) {
		scope := config.NewScope(what, "")
		s.Conn.Validate(scope)
		problems = append(problems, scope.Problems()...)
		if prev, ok := seen[s.Addr]; ok && s.Addr != "" {
			add("%s.addr %s is also %s: a server may appear once", what, s.Addr, prev)
		} else {
			seen[s.Addr] = what
		}
	}
	for i := range p.Sources {
		check(fmt.Sprintf("sources[%d]", i), &p.Sources[i])
		if p.Sources[i].ServerID == 0 {
			add("sources[%d].server_id is 0: set a replica server_id unique among the source's replicas", i)
		}
	}
	for i := range p.Targets {
		check(fmt.Sprintf("targets[%d]", i), &p.Targets[i])
	}
	if len(p.Tables) == 0 {
		add("tables is empty: list the tables to move")
	}
	names := map[string]bool{}
	for i := range p.Tables {
		t := &p.Tables[i]
		what := fmt.Sprintf("tables[%d] (%s)", i, t.Name)
		if _, _, ok := splitName(t.Name); !ok {
			add("%s: name must be schema.table", what)
			continue
		}
		if names[t.Name] {
			add("%s: listed twice", what)
		}
		names[t.Name] = true
		if t.Rename != "" {
			if _, _, ok := splitName(t.Rename); !ok {
				add("%s: rename must be schema.table", what)
			}
		}
		if t.ShardKey == "" {
			add("%s: shard_key is empty: name the column the rule reads", what)
		}
		r, err := shardrule.Build(&t.RuleSpec.Spec, len(p.Targets), "target")
		if err != nil {
			add("%s: %v", what, err)
			continue
		}
		t.rule = r
		if sr := t.SourceRule; sr != nil {
			switch {
			case len(p.Sources) < 2:
				add("%s: source_rule is for several sources (a merge); remove it", what)
			case sr.ShardKey == "":
				add("%s: source_rule.shard_key is empty: name the column the sources are sharded by", what)
			default:
				r, err := shardrule.Build(&sr.Spec, len(p.Sources), "source")
				if err != nil {
					add("%s: source_rule: %v", what, err)
					continue
				}
				t.sourceRule = r
			}
		}
	}
	if p.Copy.Workers <= 0 {
		p.Copy.Workers = 4
	}
	if p.Copy.ChunkRows <= 0 {
		p.Copy.ChunkRows = 10000
	}
	if p.Verify.ChunkRows <= 0 {
		p.Verify.ChunkRows = 2000
	}
	if p.Verify.Rechecks <= 0 {
		p.Verify.Rechecks = 3
	}
	if p.Verify.RecheckDelay <= 0 {
		p.Verify.RecheckDelay = 2 * time.Second
	}
	switch p.Cutover.Fence {
	case "":
		p.Cutover.Fence = "read_only"
	case "read_only":
	case "hook":
		if p.Cutover.FenceHook == "" || p.Cutover.UnfenceHook == "" {
			add("cutover.fence is hook: set cutover.fence_hook and cutover.unfence_hook (shell commands)")
		}
	default:
		add("cutover.fence %q: use read_only or hook", p.Cutover.Fence)
	}
	if p.Cutover.Timeout <= 0 {
		p.Cutover.Timeout = 5 * time.Minute
	}
	switch p.Cutover.ReadOnlyBypass {
	case "":
		p.Cutover.ReadOnlyBypass = BypassRefuse
		if p.Cutover.Fence == "hook" {
			p.Cutover.ReadOnlyBypass = BypassWarn // the hook fences; read_only is not what stops writes
		}
	case BypassRefuse, BypassFence, BypassWarn:
	default:
		add("cutover.read_only_bypass %q: use refuse, fence or warn", p.Cutover.ReadOnlyBypass)
	}
	if ai := &p.AutoIncrement; ai.Stagger {
		if ai.Increment == 0 {
			ai.Increment = len(p.Targets)
		}
		if ai.Increment < len(p.Targets) || ai.Increment > 65535 {
			add("auto_increment.increment %d: use at least the number of targets (%d), at most 65535", ai.Increment, len(p.Targets))
		}
	} else if ai.Increment != 0 {
		add("auto_increment.increment is set without auto_increment.stagger: true")
	}
	if p.Apply.Workers <= 0 {
		p.Apply.Workers = 8
	}
	if err := p.Apply.daemon().CheckLinger(); err != nil {
		add("%v", err)
	}
	if p.Sites.Source == "" {
		p.Sites.Source = "source"
	}
	if p.Sites.Target == "" {
		p.Sites.Target = "target"
	}
	if p.Sites.Source == p.Sites.Target {
		add("sites.source and sites.target are both %q: name them differently", p.Sites.Source)
	}
	scope := config.NewScope("conflicts", p.Sites.Source)
	p.Conflicts.Validate(scope)
	problems = append(problems, scope.Problems()...)
	return problems
}

// splitName splits "schema.table".
func splitName(s string) (schema, table string, ok bool) {
	schema, table, ok = strings.Cut(s, ".")
	return schema, table, ok && schema != "" && table != "" && !strings.Contains(table, ".")
}

// TargetName returns the table's "schema.table" on the targets.
func (t *Table) TargetName() string {
	if t.Rename != "" {
		return t.Rename
	}
	return t.Name
}

// Router returns the table's routing rule.
func (t *Table) Router() shardrule.Rule { return t.rule }

// reversible reports whether reverse replication can route every table
// back to its source: one source, or a source_rule on every table.
func (p *Plan) reversible() bool {
	if len(p.Sources) == 1 {
		return true
	}
	for i := range p.Tables {
		if p.Tables[i].sourceRule == nil {
			return false
		}
	}
	return true
}

// Table returns the plan's table named "schema.table" on the sources.
func (p *Plan) Table(name string) *Table {
	for i := range p.Tables {
		if strings.EqualFold(p.Tables[i].Name, name) {
			return &p.Tables[i]
		}
	}
	return nil
}
