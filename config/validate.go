package config

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"

	"github.com/hamal-replication/hamal/loopguard"
)

var channelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate fills defaults, reads *_file secrets and reports every problem,
// each naming its key and the fix; the engines' blocks (Source.Engine,
// Sink.Engine) validate their own keys.
func (c *Config) Validate() error {
	if p := c.problems(false); len(p) > 0 {
		return joinProblems(p)
	}
	return nil
}

// problems validates c; kindsReported says that a side without an engine
// block has had its kind's problem reported already (by Parse).
func (c *Config) problems(kindsReported bool) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if c.Name == "" {
		bad("name: required; name the channel, e.g. name: shard1-sz-to-sh")
	} else if !channelName.MatchString(c.Name) {
		bad("name: %q may hold only letters, digits, '_', '.', '-' (at most 64)", c.Name)
	}

	if c.Source.Engine == nil {
		if !kindsReported {
			bad("source: no engine block for kind %q; load the config with a registry of engines", c.Source.Kind)
		}
	} else {
		p = append(p, validateBlock(c.Source.Engine, "source", c.Source.Site)...)
	}
	if c.Sink.Engine == nil {
		if !kindsReported {
			bad("sink: no engine block for kind %q; load the config with a registry of engines", c.Sink.Kind)
		}
	} else {
		p = append(p, validateBlock(c.Sink.Engine, "sink", c.Sink.Site)...)
	}
	c.validateSites(bad)
	for _, sd := range []struct {
		block      Block
		path, site string
	}{{c.Source.Engine, "source", c.Source.Site}, {c.Sink.Engine, "sink", c.Sink.Site}} {
		if pr, ok := sd.block.(Pairer); ok {
			s := NewScope(sd.path, sd.site)
			pr.Pair(c, s)
			p = append(p, s.Problems()...)
		}
	}

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

	validateRelay(c, bad)

	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	} else if c.Admin.Listen != "off" {
		if _, port, err := net.SplitHostPort(c.Admin.Listen); err != nil || port == "" {
			bad("admin.listen: %q is not host:port, e.g. 127.0.0.1:9650", c.Admin.Listen)
		}
	}
	if c.Admin.TokenFile != "" {
		if c.Admin.Token != "" {
			bad("admin.token and admin.token_file are both set; keep one")
		} else if b, err := os.ReadFile(c.Admin.TokenFile); err != nil {
			bad("admin.token_file: %v", err)
		} else if c.Admin.Token = strings.TrimSpace(string(b)); c.Admin.Token == "" {
			bad("admin.token_file: %s is empty", c.Admin.TokenFile)
		}
	}
	if c.Admin.Listen != "off" && c.Admin.Token == "" && c.Admin.TokenFile == "" && !IsLoopback(c.Admin.Listen) {
		bad("admin.listen: %s is not a loopback address and no admin.token is set, so anyone who can reach the port could pause and resume the channel; set admin.token_file (a file holding a long random token), or listen on 127.0.0.1", c.Admin.Listen)
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
	return p
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
}

// LoopGuard returns the channel's loop guard (source.site, sink.site,
// source.forward), nil when no sites are set.
func (c *Config) LoopGuard() (*loopguard.Guard, error) {
	if c.Source.Site == "" {
		return nil, nil
	}
	g, err := loopguard.New(c.Source.Site, c.Sink.Site)
	if err != nil {
		return nil, err
	}
	if c.Source.Forward == "local" {
		g = g.LocalOnly()
	}
	return g, nil
}

func defaultInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

// Redacted returns a copy safe to log or print: the admin token and the
// engines' secrets replaced.
func (c *Config) Redacted() Config {
	r := *c
	if r.Admin.Token != "" {
		r.Admin.Token = "***"
	}
	if b, ok := r.Source.Engine.(Redactor); ok {
		r.Source.Engine = b.Redacted()
	}
	if b, ok := r.Sink.Engine.(Redactor); ok {
		r.Sink.Engine = b.Redacted()
	}
	return r
}

// IsLoopback reports whether the listen address addr (host:port) binds
// loopback only: a loopback IP or "localhost". A wildcard ("", 0.0.0.0,
// ::) or any other name is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
