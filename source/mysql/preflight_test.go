package mysql

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/test/harness"
)

// problemsMention reports whether some problem's What contains word.
func problemsMention(rep *Report, word string) bool {
	for _, p := range rep.Problems {
		if strings.Contains(p.What, word) && p.Fix != "" {
			return true
		}
	}
	return false
}

func TestPreflightServerSettings(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string // words that must appear in problems' What
	}{
		{"statement format", []string{"--binlog-format=STATEMENT"}, []string{"binlog_format is STATEMENT, Hamal needs ROW"}},
		{"minimal image, no metadata", []string{"--binlog-row-image=MINIMAL", "--binlog-row-metadata=MINIMAL"},
			[]string{"binlog_row_image is MINIMAL", "binlog_row_metadata is MINIMAL"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := harness.MariaDB(t, harness.Options{ServerID: 10 + i, Args: c.args})
			cfg := baseConfig(t, srv)
			rep, err := Preflight(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Flavor != FlavorMariaDB || !strings.Contains(rep.Version, "MariaDB") {
				t.Errorf("flavor %q version %q", rep.Flavor, rep.Version)
			}
			for _, w := range c.want {
				if !problemsMention(rep, w) {
					t.Errorf("no problem mentions %q: %+v", w, rep.Problems)
				}
			}
			if len(rep.Problems) != len(c.want) {
				t.Errorf("problems %+v, want exactly %d", rep.Problems, len(c.want))
			}
			_, err = Open(context.Background(), cfg, nil)
			var pe *PreflightError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPreflight) || retry.IsTransient(err) {
				t.Fatalf("Open: %v, want a fatal *PreflightError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open error does not list %q: %v", w, err)
				}
			}
		})
	}
}

func TestPreflightAccess(t *testing.T) {
	srv := sharedServer(t)
	execIn(t, srv, "",
		"CREATE DATABASE pf",
		"CREATE TABLE pf.keyed (id INT PRIMARY KEY, v INT)",
		"CREATE TABLE pf.uk_notnull (a INT NOT NULL, UNIQUE KEY (a))",
		"CREATE TABLE pf.uk_null (a INT, UNIQUE KEY (a))",
		"CREATE TABLE pf.nokey (a INT)",
		"CREATE TABLE pf.excluded (id INT PRIMARY KEY)",
		"CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'secret'",
		"GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'repl'@'127.0.0.1'",
		"CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'secret'",
		"GRANT SELECT ON *.* TO 'weak'@'127.0.0.1'",
	)
	closedPort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	busy := baseConfig(t, srv)
	busyReader := openReader(t, busy, nil)
	defer busyReader.Close()

	cases := []struct {
		name string
		edit func(*Config)
		want string // substring of a problem's What; "" = no problems
	}{
		{"root is fine", func(c *Config) {}, ""},
		{"replication user is fine", func(c *Config) { c.User, c.Password = "repl", "secret" }, ""},
		{"wrong password", func(c *Config) { c.User, c.Password = "repl", "nope" }, "access denied for user repl: check source.user/source.password"},
		{"unreachable", func(c *Config) { c.Addr = "127.0.0.1:" + strconv.Itoa(closedPort) }, "cannot reach source at 127.0.0.1:" + strconv.Itoa(closedPort)},
		{"no replication grant", func(c *Config) { c.User, c.Password = "weak", "secret" }, "lacks the REPLICATION SLAVE privilege"},
		{"server_id of the source", func(c *Config) { c.ServerID = 1 }, "equals the source's own server_id"},
		{"server_id of a connected replica", func(c *Config) { c.ServerID = busy.ServerID }, "already used by another replica"},
		{"server_id unset", func(c *Config) { c.ServerID = 0 }, "server_id is not set"},
		{"bad start", func(c *Config) { c.Start = "tomorrow" }, "source.start"},
		{"bad glob", func(c *Config) { c.Tables = []string{"pf.[x"} }, "bad table glob"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig(t, srv)
			cfg.Tables = []string{"pf.*"}
			cfg.Exclude = []string{"pf.excluded"}
			c.edit(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			rep, err := Preflight(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if len(rep.Problems) > 0 {
					t.Fatalf("unexpected problems: %+v", rep.Problems)
				}
				return
			}
			if !problemsMention(rep, c.want) {
				t.Fatalf("problems %+v do not mention %q", rep.Problems, c.want)
			}
			if c.name == "unreachable" {
				// An unreachable source is an outage: transient, so the
				// channel retries instead of waiting for an operator.
				_, err := Open(ctx, cfg, nil)
				if !errors.Is(err, ErrUnreachable) || !retry.IsTransient(err) {
					t.Fatalf("Open on a closed port: %v", err)
				}
			}
		})
	}

	rep, err := Preflight(context.Background(), Config{Addr: srv.Addr, User: "root", ServerID: replicaID(), Tables: []string{"pf.*"}, Exclude: []string{"pf.excluded"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"keyed": true, "uk_notnull": true, "uk_null": false, "nokey": false}
	if len(rep.Tables) != len(want) {
		t.Fatalf("tables %+v, want %v", rep.Tables, want)
	}
	for _, ti := range rep.Tables {
		hasKey, ok := want[ti.Name]
		if !ok || ti.Schema != "pf" || ti.HasKey != hasKey {
			t.Errorf("table %+v, want HasKey=%v", ti, hasKey)
		}
	}
	if rep.Tables[0].Name != "keyed" || strings.Join(rep.Tables[0].Columns, ",") != "id,v" {
		t.Errorf("first table %+v", rep.Tables[0])
	}
}
