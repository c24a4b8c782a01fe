package config

func init() {
	register("mysql", Kind{Source: validateMySQLSource, Sink: validateMySQLSink})
}

func validateMySQLSource(c *Config, bad func(string, ...any)) {
	checkAddr(bad, "source.addr", c.Source.Addr)
	if c.Source.User == "" {
		bad("source.user: required (a user with REPLICATION SLAVE, REPLICATION CLIENT and SELECT)")
	}
	if c.Source.ServerID == 0 {
		bad("source.server_id: required; pick an id no other server or replica of the source uses, e.g. 1001")
	}
	switch c.Source.Flavor {
	case "", "mysql", "mariadb":
	default:
		bad("source.flavor: %q is not one of mysql, mariadb (or leave it out to auto-detect)", c.Source.Flavor)
	}
	if c.Source.Start == "" {
		c.Source.Start = "current"
	}
}

func validateMySQLSink(c *Config, bad func(string, ...any)) {
	checkAddr(bad, "sink.addr", c.Sink.Addr)
	if c.Sink.User == "" {
		bad("sink.user: required")
	}
}
