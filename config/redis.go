package config

import (
	"sort"
	"strings"
)

func init() {
	register("redis", Kind{Source: validateRedisSource, Sink: validateRedisSink})
}

// RedisSource holds the filters of source.kind redis, under source.redis.
type RedisSource struct {
	// IncludePrefixes, when set, replicates only keys starting with one of
	// them; ExcludePrefixes drops keys starting with one of them (also when
	// included).
	IncludePrefixes []string `yaml:"include_prefixes"`
	ExcludePrefixes []string `yaml:"exclude_prefixes"`
	// Databases maps source database numbers to target ones; when set,
	// databases not listed are not replicated.
	Databases map[int]int `yaml:"databases"`
}

func validateRedisSource(c *Config, bad func(string, ...any)) {
	checkAddr(bad, "source.addr", c.Source.Addr)
	if c.Source.ServerID != 0 {
		bad("source.server_id: not used by a redis source; remove it")
	}
	if c.Source.Flavor != "" {
		bad("source.flavor: not used by a redis source; remove it")
	}
	if len(c.Source.Tables) > 0 || len(c.Source.Exclude) > 0 {
		bad("source.tables / source.exclude: not used by a redis source; filter keys with source.redis.include_prefixes / exclude_prefixes and databases with source.redis.databases")
	}
	switch c.Source.Start {
	case "", "fullsync":
		c.Source.Start = "fullsync"
	default:
		bad("source.start: %q: a redis source always starts with a full sync, then resumes from its checkpoint; remove the key", c.Source.Start)
	}
	if r := c.Source.Redis; r != nil {
		for key, list := range map[string][]string{"include_prefixes": r.IncludePrefixes, "exclude_prefixes": r.ExcludePrefixes} {
			for i, p := range list {
				switch {
				case p == "":
					bad("source.redis.%s[%d]: empty prefix (it would match every key); remove it", key, i)
				case strings.HasPrefix(p, "hamal:"):
					bad("source.redis.%s[%d]: %q: keys starting with hamal: are Hamal's own and never replicated; remove it", key, i, p)
				}
			}
		}
		srcs := make([]int, 0, len(r.Databases))
		for from := range r.Databases {
			srcs = append(srcs, from)
		}
		sort.Ints(srcs)
		to := map[int]int{}
		for _, from := range srcs {
			t := r.Databases[from]
			if from < 0 || t < 0 {
				bad("source.redis.databases: %d: %d: database numbers are 0 or more", from, t)
				continue
			}
			if prev, dup := to[t]; dup {
				bad("source.redis.databases: source databases %d and %d both map to target database %d; map each to its own target database", prev, from, t)
				continue
			}
			to[t] = from
		}
	}
}

func validateRedisSink(c *Config, bad func(string, ...any)) {
	checkAddr(bad, "sink.addr", c.Sink.Addr)
	if len(c.Sink.AllowKeylessTables) > 0 {
		bad("sink.allow_keyless_tables: not used by a redis sink; remove it")
	}
}
