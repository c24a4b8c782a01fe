package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	sinkredis "github.com/hamal-replication/hamal/sink/redis"
	"github.com/hamal-replication/hamal/source"
	srcredis "github.com/hamal-replication/hamal/source/redis"
	"github.com/hamal-replication/hamal/tlslink"
)

// Driver is the Redis engine (kind redis) on both sides.
var Driver = engine.Driver{
	Name:      "redis",
	NewSource: func() engine.SourceConfig { return &SourceConfig{} },
	NewSink:   func() engine.SinkConfig { return &SinkConfig{} },
}

// SourceConfig is the source block of kind redis.
type SourceConfig struct {
	Addr         string `yaml:"addr"` // host:port of the master
	User         string `yaml:"user"` // ACL user; empty: the default user
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// TLS encrypts the PSYNC link and every other connection to the
	// master; on means required.
	TLS config.TLS `yaml:"tls"`
	// MaxBulkBytes bounds one string from the master (a key, a value, an
	// element) in the stream and the RDB; default 512 MiB (Redis's
	// proto-max-bulk-len).
	MaxBulkBytes int64 `yaml:"max_bulk_bytes"`
	// Start may only say fullsync (the default): a Redis source always
	// begins with a full sync, then resumes from its checkpoint.
	Start string  `yaml:"start"`
	Redis *Filter `yaml:"redis"`
}

// Filter holds the filters under source.redis.
type Filter struct {
	// IncludePrefixes, when set, replicates only keys starting with one of
	// them; ExcludePrefixes drops keys starting with one of them (also when
	// included).
	IncludePrefixes []string `yaml:"include_prefixes"`
	ExcludePrefixes []string `yaml:"exclude_prefixes"`
	// Databases maps source database numbers to target ones; when set,
	// databases not listed are not replicated.
	Databases map[int]int `yaml:"databases"`
}

var (
	_ engine.SourceConfig = (*SourceConfig)(nil)
	_ engine.SinkConfig   = (*SinkConfig)(nil)
	_ config.Redactor     = (*SourceConfig)(nil)
	_ config.Redactor     = (*SinkConfig)(nil)
)

// Validate implements config.Block.
func (c *SourceConfig) Validate(s *config.Scope) {
	s.Addr("addr", c.Addr)
	s.Secret(&c.Password, c.PasswordFile)
	s.TLS("tls", &c.TLS)
	switch {
	case c.MaxBulkBytes == 0:
		c.MaxBulkBytes = srcredis.DefaultMaxBulkBytes
	case c.MaxBulkBytes < 0:
		s.Bad("%s: must be positive, e.g. 536870912 (512 MiB, Redis's proto-max-bulk-len)", s.Key("max_bulk_bytes"))
	}
	switch c.Start {
	case "", "fullsync":
		c.Start = "fullsync"
	default:
		s.Bad("%s: %q: a redis source always starts with a full sync, then resumes from its checkpoint; remove the key", s.Key("start"), c.Start)
	}
	if c.Redis != nil {
		c.Redis.validate(s.Sub("redis"))
	}
}

func (f *Filter) validate(s *config.Scope) {
	for _, l := range []struct {
		key  string
		list []string
	}{{"include_prefixes", f.IncludePrefixes}, {"exclude_prefixes", f.ExcludePrefixes}} {
		for i, p := range l.list {
			switch {
			case p == "":
				s.Bad("%s[%d]: empty prefix (it would match every key); remove it", s.Key(l.key), i)
			case strings.HasPrefix(p, srcredis.MarkerPrefix):
				s.Bad("%s[%d]: %q: keys starting with %s are Hamal's own and never replicated; remove it", s.Key(l.key), i, p, srcredis.MarkerPrefix)
			}
		}
	}
	srcs := make([]int, 0, len(f.Databases))
	for from := range f.Databases {
		srcs = append(srcs, from)
	}
	sort.Ints(srcs)
	to := map[int]int{}
	for _, from := range srcs {
		t := f.Databases[from]
		if from < 0 || t < 0 {
			s.Bad("%s: %d: %d: database numbers are 0 or more", s.Key("databases"), from, t)
			continue
		}
		if prev, dup := to[t]; dup {
			s.Bad("%s: source databases %d and %d both map to target database %d; map each to its own target database", s.Key("databases"), prev, from, t)
			continue
		}
		to[t] = from
	}
}

// Redacted implements config.Redactor.
func (c *SourceConfig) Redacted() config.Block {
	r := *c
	if r.Password != "" {
		r.Password = "***"
	}
	return &r
}

// ReaderConfig is the block as source/redis's Config, TLS included.
func (c *SourceConfig) ReaderConfig(env engine.Env) (srcredis.Config, error) {
	tlsConfig, err := tlsConfig("source", c.Addr, c.TLS)
	if err != nil {
		return srcredis.Config{}, err
	}
	rc := srcredis.Config{Addr: c.Addr, User: c.User, Password: c.Password, Site: env.Site, Channel: env.Channel,
		TLS: tlsConfig, MaxBulkBytes: c.MaxBulkBytes, Logger: env.Logger}
	if f := c.Redis; f != nil {
		rc.Filter = &srcredis.Filter{Include: f.IncludePrefixes, Exclude: f.ExcludePrefixes, Databases: f.Databases}
	}
	return rc, nil
}

// tlsConfig is the tls block's crypto/tls configuration for addr's host
// (nil when off), its key in the error.
func tlsConfig(side, addr string, t config.TLS) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	cfg, err := t.Config(host)
	if err != nil {
		return nil, fmt.Errorf("%s.tls: %w", side, err)
	}
	return cfg, nil
}

// Open implements engine.SourceConfig.
func (c *SourceConfig) Open(ctx context.Context, env engine.Env, resume event.Position) (source.Source, error) {
	rc, err := c.ReaderConfig(env)
	if err != nil {
		return nil, err
	}
	return srcredis.Open(ctx, rc, resume)
}

// Check implements engine.SourceConfig: the master answers as the user
// (over TLS when source.tls is on) and serves its COMMAND table.
func (c *SourceConfig) Check(ctx context.Context, env engine.Env, r *engine.Report) {
	rc, err := c.ReaderConfig(env)
	if err != nil {
		r.Fail(err.Error(), "fix source.tls")
		return
	}
	client := srcredis.NewClient(rc)
	defer client.Close()
	if _, err := srcredis.LoadCommands(ctx, client); err != nil {
		fix := "check source.addr, source.user and source.password; the user needs +psync +replconf +command +info"
		var te *tlslink.Error
		if errors.As(err, &te) {
			fix = te.Fix
		}
		r.Fail(fmt.Sprintf("source %s: %v", c.Addr, srcredis.Explain(rc, err)), fix)
		return
	}
	r.OK("source redis %s reachable%s; COMMAND table read", c.Addr, overTLS(c.TLS))
}

// overTLS is " over TLS" for a check's message when the block is on.
func overTLS(t config.TLS) string {
	if t.Enabled {
		return " over TLS"
	}
	return ""
}

// StartsAt implements engine.SourceConfig. A redis source has no start to
// choose (source.start takes no other value), so it names what happens.
func (c *SourceConfig) StartsAt() string {
	return "a full sync of the master (PSYNC ? -1, then the stream from its offset)"
}

// Endpoint implements engine.SourceConfig.
func (c *SourceConfig) Endpoint() string { return c.Addr }

// SinkConfig is the sink block of kind redis.
type SinkConfig struct {
	Addr         string `yaml:"addr"`
	User         string `yaml:"user"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// TLS encrypts every connection to the target; on means required.
	TLS config.TLS `yaml:"tls"`
}

// Validate implements config.Block.
func (c *SinkConfig) Validate(s *config.Scope) {
	s.Addr("addr", c.Addr)
	s.Secret(&c.Password, c.PasswordFile)
	s.TLS("tls", &c.TLS)
}

// Redacted implements config.Redactor.
func (c *SinkConfig) Redacted() config.Block {
	r := *c
	if r.Password != "" {
		r.Password = "***"
	}
	return &r
}

// ApplierConfig is the block as sink/redis's Config, TLS included.
func (c *SinkConfig) ApplierConfig(env engine.Env) (sinkredis.Config, error) {
	tlsConf, err := tlsConfig("sink", c.Addr, c.TLS)
	if err != nil {
		return sinkredis.Config{}, err
	}
	return sinkredis.Config{Addr: c.Addr, User: c.User, Password: c.Password, Site: env.Site, Channel: env.Channel,
		Workers: env.Workers, TLS: tlsConf, Logger: env.Logger}, nil
}

// Open implements engine.SinkConfig.
func (c *SinkConfig) Open(ctx context.Context, env engine.Env) (sink.Sink, error) {
	sc, err := c.ApplierConfig(env)
	if err != nil {
		return nil, err
	}
	return sinkredis.Open(ctx, sc)
}

// Check implements engine.SinkConfig: the target answers (opened without
// the lease, which the running channel holds), over TLS when sink.tls is
// on.
func (c *SinkConfig) Check(ctx context.Context, env engine.Env, r *engine.Report) {
	sc, err := c.ApplierConfig(env)
	if err != nil {
		r.Fail(err.Error(), "fix sink.tls")
		return
	}
	sc.SkipLease = true
	snk, err := sinkredis.Open(ctx, sc)
	if err != nil {
		fix := "check sink.addr, sink.user and sink.password"
		var te *tlslink.Error
		if errors.As(err, &te) {
			fix = te.Fix
		}
		r.Fail(fmt.Sprintf("target %s: %v", c.Addr, err), fix)
		return
	}
	snk.Close()
	r.OK("target redis %s reachable%s", c.Addr, overTLS(c.TLS))
}

// Endpoint implements engine.SinkConfig.
func (c *SinkConfig) Endpoint() string { return c.Addr }
