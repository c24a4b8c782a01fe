package config

import (
	"fmt"
	"net"
	"os"
	"path"
	"regexp"
	"strings"
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

	checkKind(&p, "source.kind", c.Source.Kind)
	checkAddr(&p, "source.addr", c.Source.Addr)
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
	checkGlobs(&p, "source.tables", c.Source.Tables)
	checkGlobs(&p, "source.exclude", c.Source.Exclude)
	readSecret(&p, "source", &c.Source.Password, c.Source.PasswordFile)

	checkKind(&p, "sink.kind", c.Sink.Kind)
	checkAddr(&p, "sink.addr", c.Sink.Addr)
	if c.Sink.User == "" {
		bad("sink.user: required")
	}
	checkGlobs(&p, "sink.allow_keyless_tables", c.Sink.AllowKeylessTables)
	readSecret(&p, "sink", &c.Sink.Password, c.Sink.PasswordFile)

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

	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	} else if c.Admin.Listen != "off" {
		checkAddr(&p, "admin.listen", c.Admin.Listen)
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

// checkKind accepts the engines implemented so far and names the others
// as planned rather than unknown.
func checkKind(p *[]string, key, kind string) {
	switch kind {
	case "mysql":
	case "":
		*p = append(*p, key+": required; supported: mysql")
	case "redis", "mongo", "mongodb", "kafka":
		*p = append(*p, fmt.Sprintf("%s: %q is not supported yet; supported: mysql", key, kind))
	default:
		*p = append(*p, fmt.Sprintf("%s: unknown kind %q; supported: mysql", key, kind))
	}
}

func defaultInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

func checkAddr(p *[]string, key, addr string) {
	if addr == "" {
		*p = append(*p, key+": required, as host:port, e.g. 127.0.0.1:3306")
		return
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		*p = append(*p, fmt.Sprintf("%s: %q is not host:port, e.g. 127.0.0.1:3306", key, addr))
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
	return r
}
