package config

func init() {
	register("redis", Kind{Source: validateRedisSource, Sink: validateRedisSink})
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
		bad("source.tables / source.exclude: not supported by a redis source yet; remove them (every database and key is replicated)")
	}
	switch c.Source.Start {
	case "", "fullsync":
		c.Source.Start = "fullsync"
	default:
		bad("source.start: %q: a redis source always starts with a full sync, then resumes from its checkpoint; remove the key", c.Source.Start)
	}
}

func validateRedisSink(c *Config, bad func(string, ...any)) {
	checkAddr(bad, "sink.addr", c.Sink.Addr)
	if len(c.Sink.AllowKeylessTables) > 0 {
		bad("sink.allow_keyless_tables: not used by a redis sink; remove it")
	}
}
