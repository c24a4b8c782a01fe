package mysql

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/shardrule"
	"github.com/hamal-replication/hamal/sink"
	sinkmysql "github.com/hamal-replication/hamal/sink/mysql"
)

// SinkConfig is the sink block of kind mysql: Hamal applies to the
// server, replay-safe, under a fencing lease.
type SinkConfig struct {
	Conn `yaml:",inline"`
	// AllowKeylessTables lists globs of tables without a primary key or
	// NOT NULL unique key that are applied anyway, by full-row match.
	AllowKeylessTables []string `yaml:"allow_keyless_tables"`
	// HamalSchema is the target schema for Hamal's own tables.
	HamalSchema string `yaml:"hamal_schema"`
	// Conflicts sets how changes made at both sites at once are resolved
	// (with sink.site).
	Conflicts Conflicts `yaml:"conflicts"`
	// Unsynced maps "schema.table" to its owner column: applied writes
	// clear their owners' entries in <hamal_schema>.unsynced (with
	// sink.site).
	Unsynced map[string]string `yaml:"unsynced"`
	// Ownership maps "schema.table" to its owner column and the rule
	// naming each owner's home site (with sink.site): a change from
	// another site is applied and recorded as a foreign write.
	Ownership map[string]OwnershipTable `yaml:"ownership"`
	// CreateTables creates the schemas and tables the target lacks from
	// the source's definitions; only source.start: snapshot creates
	// tables, and there it defaults to true (nil).
	CreateTables *bool `yaml:"create_tables"`
}

// Conflicts holds the default conflict policy and per-table overrides.
type Conflicts struct {
	Default string                   `yaml:"default"` // source-wins | target-wins
	Tables  map[string]ConflictTable `yaml:"tables"`  // by "schema.table"
}

// ConflictTable is one table's conflict policy.
type ConflictTable struct {
	Policy string `yaml:"policy"` // source-wins | target-wins | last-writer-wins
	Column string `yaml:"column"` // for last-writer-wins: the timestamp or version column
}

// OwnershipTable is one table of sink.ownership: its owner column and
// the home rule.
type OwnershipTable struct {
	Column string    `yaml:"column"`
	Home   OwnerHome `yaml:"home"`
}

// OwnerHome maps an owner to its home site: the rule (shardrule: hash,
// range or list, as in resharding plans) picks shard i, and site i of
// Sites is the home.
type OwnerHome struct {
	Sites          []string `yaml:"sites"`
	shardrule.Spec `yaml:",inline"`
}

var (
	_ engine.SinkConfig = (*SinkConfig)(nil)
	_ config.Redactor   = (*SinkConfig)(nil)
	_ config.Block      = (*Conflicts)(nil)
	_ config.Pairer     = (*SinkConfig)(nil)
)

// Validate implements config.Block.
func (c *SinkConfig) Validate(s *config.Scope) {
	c.Conn.validate(s, "")
	s.Globs("allow_keyless_tables", c.AllowKeylessTables)
	if !c.Conflicts.empty() && s.Site == "" {
		s.Bad("%s: needs source.site and sink.site; conflicts only arise between sites", s.Key("conflicts"))
	}
	c.Conflicts.Validate(s.Sub("conflicts"))
	if len(c.Unsynced) > 0 && s.Site == "" {
		s.Bad("%s: needs source.site and sink.site (owners are cleared per origin site)", s.Key("unsynced"))
	}
	for ns, col := range c.Unsynced {
		if !strings.Contains(ns, ".") || col == "" {
			s.Bad("%s.%s: name the table as schema.table and give its owner column, e.g. app.orders: customer_id", s.Key("unsynced"), ns)
		}
	}
	if len(c.Ownership) > 0 && s.Site == "" {
		s.Bad("%s: needs source.site and sink.site (a write is foreign when its origin site is not its owner's home)", s.Key("ownership"))
	}
	for ns, o := range c.Ownership {
		key := s.Sub("ownership").Key(ns)
		if !strings.Contains(ns, ".") || o.Column == "" {
			s.Bad("%s: name the table as schema.table and give its owner column, e.g. app.orders: {column: user_id, home: {sites: [sz, sh], rule: hash}}", key)
		}
		if len(o.Home.Sites) == 0 {
			s.Bad("%s.home.sites: list the sites, in the order of the rule's shards, e.g. [sz, sh]", key)
			continue
		}
		if _, err := shardrule.Build(&o.Home.Spec, len(o.Home.Sites), "site"); err != nil {
			s.Bad("%s.home: %v", key, err)
		}
	}
	hamalSchema(s, &c.HamalSchema)
}

// OwnershipRules is sink.ownership as the sink applies it.
func (c *SinkConfig) OwnershipRules() (map[string]sinkmysql.Ownership, error) {
	if len(c.Ownership) == 0 {
		return nil, nil
	}
	out := make(map[string]sinkmysql.Ownership, len(c.Ownership))
	for ns, o := range c.Ownership {
		r, err := shardrule.Build(&o.Home.Spec, len(o.Home.Sites), "site")
		if err != nil {
			return nil, fmt.Errorf("sink.ownership.%s.home: %w", ns, err)
		}
		out[ns] = sinkmysql.Ownership{Column: o.Column, Rule: r, Sites: o.Home.Sites}
	}
	return out, nil
}

func (c *Conflicts) empty() bool { return c.Default == "" && len(c.Tables) == 0 }

// Validate implements config.Block: each policy is known, last-writer-wins
// names its column (per table only), tables are schema.table.
func (c *Conflicts) Validate(s *config.Scope) {
	checkPolicy := func(key, policy, column string) {
		switch policy {
		case "", "source-wins", "target-wins":
			if column != "" {
				s.Bad("%s.column: only last-writer-wins uses a column", key)
			}
		case "last-writer-wins":
			if column == "" {
				s.Bad("%s.column: required by last-writer-wins; name a column every write updates, e.g. updated_at TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)", key)
			}
		default:
			s.Bad("%s: policy %q is not one of source-wins, target-wins, last-writer-wins", key, policy)
		}
	}
	if c.Default == "last-writer-wins" {
		s.Bad("%s: last-writer-wins needs a column, so set it per table under %s", s.Key("default"), s.Key("tables"))
	} else {
		checkPolicy(s.Key("default"), c.Default, "")
	}
	for ns, tc := range c.Tables {
		key := s.Sub("tables").Key(ns)
		checkPolicy(key, tc.Policy, tc.Column)
		if !strings.Contains(ns, ".") {
			s.Bad("%s: name the table as schema.table", key)
		}
	}
}

// Rules is the policies as the sink applies them.
func (c Conflicts) Rules() sinkmysql.ConflictRules {
	rules := sinkmysql.ConflictRules{Default: sinkmysql.ConflictRule{Policy: c.Default}}
	for ns, tc := range c.Tables {
		if rules.Tables == nil {
			rules.Tables = map[string]sinkmysql.ConflictRule{}
		}
		rules.Tables[ns] = sinkmysql.ConflictRule{Policy: tc.Policy, Column: tc.Column}
	}
	return rules
}

// Redacted implements config.Redactor.
func (c *SinkConfig) Redacted() config.Block {
	r := *c
	r.Conn = c.Conn.redacted()
	return &r
}

// ApplierConfig is the block as sink/mysql's Config, TLS and conflict
// rules included.
func (c *SinkConfig) ApplierConfig(env engine.Env) (sinkmysql.Config, error) {
	tlsConfig, err := tlsFor("sink", c.Conn)
	if err != nil {
		return sinkmysql.Config{}, err
	}
	ownership, err := c.OwnershipRules()
	if err != nil {
		return sinkmysql.Config{}, err
	}
	return sinkmysql.Config{Addr: c.Addr, User: c.User, Password: c.Password, Channel: env.Channel,
		Workers: env.Workers, AllowKeyless: c.AllowKeylessTables, Site: env.Site, HamalSchema: c.HamalSchema,
		Conflicts: c.Conflicts.Rules(), Unsynced: c.Unsynced, Ownership: ownership, TLS: tlsConfig, Logger: env.Logger}, nil
}

// Open implements engine.SinkConfig.
func (c *SinkConfig) Open(ctx context.Context, env engine.Env) (sink.Sink, error) {
	return c.OpenApplier(ctx, env, false)
}

// OpenApplier is Open returning the MySQL sink itself; readOnly opens it
// without the fencing lease, for checks and reports next to a running
// channel (such a sink must not Apply).
func (c *SinkConfig) OpenApplier(ctx context.Context, env engine.Env, readOnly bool) (*sinkmysql.Sink, error) {
	sc, err := c.ApplierConfig(env)
	if err != nil {
		return nil, err
	}
	sc.SkipLease = readOnly
	return sinkmysql.Open(ctx, sc)
}

// Endpoint implements engine.SinkConfig.
func (c *SinkConfig) Endpoint() string { return c.Addr }

// Check implements engine.SinkConfig: the target answers, the account has
// the grants it needs, and every table the source's check found exists on
// the target with its columns and a key (or is allowed keyless).
func (c *SinkConfig) Check(ctx context.Context, env engine.Env, r *engine.Report) {
	sc, err := c.ApplierConfig(env)
	if err != nil {
		r.Fail(err.Error(), "fix sink.tls")
		return
	}
	sc.SkipLease = true
	snk, err := sinkmysql.Open(ctx, sc)
	if err != nil {
		r.Fail(fmt.Sprintf("target %s: %v", c.Addr, err), "check sink.addr, sink.user and sink.password")
		return
	}
	defer snk.Close()
	r.OK("target %s reachable%s", c.Addr, overTLS(c.TLS))
	schemas := map[string]bool{}
	var schemaList []string
	for _, t := range r.Tables {
		if !schemas[t.Schema] {
			schemas[t.Schema] = true
			schemaList = append(schemaList, t.Schema)
		}
	}
	checkGrants(ctx, r, "sink", c.Conn, sinkNeeds(schemaList, c.HamalSchema, env.Site != ""))
	if r.Tables == nil || r.Seeding {
		return // the snapshot's check (CheckSeed) looks at the target's tables
	}
	missing := 0
	for _, t := range r.Tables {
		if err := snk.CheckTable(ctx, t.Schema, t.Name, t.Columns); err != nil {
			missing++
			var te *sinkmysql.TableError
			if errors.As(err, &te) {
				r.Fail(te.What(), te.Fix())
			} else {
				r.Fail(fmt.Sprintf("target table %s.%s: %v", t.Schema, t.Name, err), "check that the target answers and sink.user may read information_schema")
			}
		}
		if !t.HasKey && !matchAny(c.AllowKeylessTables, t.Schema+"."+t.Name) {
			r.Fail(fmt.Sprintf("source table %s.%s has neither a primary key nor a NOT NULL unique key", t.Schema, t.Name),
				"add a primary key, exclude the table (source.exclude), or list it in sink.allow_keyless_tables")
		}
	}
	if missing == 0 {
		r.OK("target has all %d tables with compatible columns", len(r.Tables))
	}
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}
