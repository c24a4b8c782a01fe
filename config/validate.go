package config

import (
	"fmt"
	"net"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/hamal-replication/hamal/loopguard"
)

var channelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate fills defaults, reads *_file secrets and reports every problem,
// each naming its key and the fix.
func (c *Config) Validate() error {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if c.Name == "" {
		bad("name: required; name the channel, e.g. name: shard1-sz-to-sh")
	} else if !channelName.MatchString(c.Name) {
		bad("name: %q may hold only letters, digits, '_', '.', '-' (at most 64)", c.Name)
	}

	checkKind(&p, "source", c.Source.Kind, func(k Kind) func(*Config, func(string, ...any)) { return k.Source })
	checkKind(&p, "sink", c.Sink.Kind, func(k Kind) func(*Config, func(string, ...any)) { return k.Sink })
	if k, ok := kinds[c.Source.Kind]; ok && k.Source != nil {
		k.Source(c, bad)
	}
	if k, ok := kinds[c.Sink.Kind]; ok && k.Sink != nil {
		k.Sink(c, bad)
	}
	checkGlobs(&p, "source.tables", c.Source.Tables)
	checkGlobs(&p, "source.exclude", c.Source.Exclude)
	readSecret(&p, "source", &c.Source.Password, c.Source.PasswordFile)
	checkGlobs(&p, "sink.allow_keyless_tables", c.Sink.AllowKeylessTables)
	readSecret(&p, "sink", &c.Sink.Password, c.Sink.PasswordFile)
	c.validateSites(bad)

	a := &c.Apply
	defaultInt(&a.Workers, DefaultWorkers)
	defaultInt(&a.BatchTxns, DefaultBatchTxns)
	defaultInt(&a.BatchBytes, DefaultBatchBytes)
	defaultInt(&a.WindowTxns, DefaultWindowTxns)
	if a.WindowBytes == 0 {
		a.WindowBytes = DefaultWindowBytes
	}
	if a.Workers < 0 || a.Workers > 1024 {
		bad("apply.workers: %d is out of range 1..1024", a.Workers)
	}
	if a.BatchTxns < 0 || a.BatchBytes < 0 || a.WindowTxns < 0 || a.WindowBytes < 0 {
		bad("apply: batch_txns, batch_bytes, window_txns and window_bytes must be positive")
	}
	if err := a.CheckLinger(); err != nil {
		bad("%v", err)
	}
	if a.WindowTxns > 0 && a.WindowTxns < a.Workers {
		bad("apply.window_txns: %d is below apply.workers (%d); raise it so every worker can have work", a.WindowTxns, a.Workers)
	}

	if c.Checkpoint.Dir == "" {
		bad("checkpoint.dir: required; a directory Hamal owns, e.g. /var/lib/hamal/%s", c.Name)
	}
	if c.Checkpoint.Interval == 0 {
		c.Checkpoint.Interval = DefaultInterval
	} else if c.Checkpoint.Interval < 0 {
		bad("checkpoint.interval: must be positive, e.g. 1s")
	}

	validateOps(c, bad)
	validateRelay(c, bad)

	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	} else if c.Admin.Listen != "off" {
		checkAddr(bad, "admin.listen", c.Admin.Listen)
	}

	switch strings.ToLower(c.Log.Level) {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "text"
	case "text", "json":
	default:
		bad("log.format: %q is not one of text, json", c.Log.Format)
	}
	if len(p) > 0 {
		return joinProblems(p)
	}
	return nil
}

// checkKind reports a missing, unknown or planned kind, or one that cannot
// play this side (role is "source" or "sink").
func checkKind(p *[]string, role, kind string, side func(Kind) func(*Config, func(string, ...any))) {
	var can []string
	for name, k := range kinds {
		if side(k) != nil {
			can = append(can, name)
		}
	}
	sort.Strings(can)
	supported := "supported: " + strings.Join(can, ", ")
	k, known := kinds[kind]
	switch {
	case known && side(k) != nil:
	case kind == "":
		*p = append(*p, fmt.Sprintf("%s.kind: required; %s", role, supported))
	case known:
		*p = append(*p, fmt.Sprintf("%s.kind: %q cannot be a %s; %s", role, kind, role, supported))
	case planned[kind]:
		*p = append(*p, fmt.Sprintf("%s.kind: %q is not supported yet; %s", role, kind, supported))
	default:
		*p = append(*p, fmt.Sprintf("%s.kind: unknown kind %q; %s", role, kind, supported))
	}
}

// validateSites checks the loop guard keys: both sites or neither.
func (c *Config) validateSites(bad func(string, ...any)) {
	src, snk := c.Source.Site, c.Sink.Site
	switch {
	case src == "" && snk != "":
		bad("source.site: required when sink.site is set; name the site the source is in, e.g. site: sz")
	case src != "" && snk == "":
		bad("sink.site: required when source.site is set; name the site the target is in, e.g. site: sh")
	case src != "" && src == snk:
		bad("source.site and sink.site are both %q: a channel connects two different sites", src)
	}
	for _, s := range []struct{ key, v string }{{"source.site", src}, {"sink.site", snk}} {
		if s.v != "" && !loopguard.ValidSite(s.v) {
			bad("%s: %q: use 1-32 letters, digits, '_' or '-'", s.key, s.v)
		}
	}
	cf := &c.Sink.Conflicts
	if (cf.Default != "" || len(cf.Tables) > 0) && snk == "" {
		bad("sink.conflicts: needs source.site and sink.site; conflicts only arise between sites")
	}
	checkPolicy := func(key, policy, column string) {
		switch policy {
		case "", "source-wins", "target-wins":
			if column != "" {
				bad("%s.column: only last-writer-wins uses a column", key)
			}
		case "last-writer-wins":
			if column == "" {
				bad("%s.column: required by last-writer-wins; name a column every write updates, e.g. updated_at TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)", key)
			}
		default:
			bad("%s: policy %q is not one of source-wins, target-wins, last-writer-wins", key, policy)
		}
	}
	if cf.Default == "last-writer-wins" {
		bad("sink.conflicts.default: last-writer-wins needs a column, so set it per table under sink.conflicts.tables")
	} else {
		checkPolicy("sink.conflicts.default", cf.Default, "")
	}
	for ns, tc := range cf.Tables {
		checkPolicy("sink.conflicts.tables."+ns, tc.Policy, tc.Column)
		if !strings.Contains(ns, ".") {
			bad("sink.conflicts.tables.%s: name the table as schema.table", ns)
		}
	}
	if len(c.Sink.Unsynced) > 0 && snk == "" {
		bad("sink.unsynced: needs source.site and sink.site (owners are cleared per origin site)")
	}
	for ns, col := range c.Sink.Unsynced {
		if !strings.Contains(ns, ".") || col == "" {
			bad("sink.unsynced.%s: name the table as schema.table and give its owner column, e.g. app.orders: customer_id", ns)
		}
	}
	switch c.Source.Forward {
	case "":
		c.Source.Forward = "all"
	case "all":
	case "local":
		if src == "" {
			bad("source.forward: needs source.site and sink.site (the loop guard)")
		}
	default:
		bad("source.forward: %q is not one of all, local", c.Source.Forward)
	}
	for _, s := range []struct {
		key string
		v   *string
	}{{"source.hamal_schema", &c.Source.HamalSchema}, {"sink.hamal_schema", &c.Sink.HamalSchema}} {
		if *s.v == "" {
			*s.v = DefaultHamalSchema
		} else if !schemaName.MatchString(*s.v) {
			bad("%s: %q: use letters, digits and '_' (at most 64)", s.key, *s.v)
		}
	}
}

var schemaName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

func defaultInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

func checkAddr(bad func(string, ...any), key, addr string) {
	if addr == "" {
		bad("%s: required, as host:port, e.g. 127.0.0.1:3306", key)
		return
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		bad("%s: %q is not host:port, e.g. 127.0.0.1:3306", key, addr)
	}
}

func checkGlobs(p *[]string, key string, globs []string) {
	for i, g := range globs {
		if _, err := path.Match(g, "x.y"); err != nil || !strings.Contains(g, ".") {
			*p = append(*p, fmt.Sprintf("%s[%d]: %q is not a schema.table glob, e.g. \"app.*\"", key, i, g))
		}
	}
}

func readSecret(p *[]string, section string, password *string, file string) {
	if file == "" {
		return
	}
	if *password != "" {
		*p = append(*p, fmt.Sprintf("%s.password and %s.password_file are both set; keep one", section, section))
		return
	}
	b, err := os.ReadFile(file)
	if err != nil {
		*p = append(*p, fmt.Sprintf("%s.password_file: %v", section, err))
		return
	}
	*password = strings.TrimRight(string(b), "\r\n")
}

// Redacted returns a copy safe to log or print: passwords replaced.
func (c *Config) Redacted() Config {
	r := *c
	if r.Source.Password != "" {
		r.Source.Password = "***"
	}
	if r.Sink.Password != "" {
		r.Sink.Password = "***"
	}
	if r.Admin.Token != "" {
		r.Admin.Token = "***"
	}
	if r.Sink.Mongo != nil {
		m := *r.Sink.Mongo
		m.URI = redactURI(m.URI)
		r.Sink.Mongo = &m
	}
	if r.Source.Mongo != nil {
		m := *r.Source.Mongo
		m.URI = redactURI(m.URI)
		r.Source.Mongo = &m
	}
	return r
}
