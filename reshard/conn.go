package reshard

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// dial connects to one shard through the MySQL driver (TLS as the plan
// says) with the session every reshard connection uses: UTC (TIMESTAMP
// text compares and round-trips), utf8mb4 literals with results in each
// column's own bytes (character_set_results=binary: key values go back
// into WHERE clauses exactly, see tablecopy), a lenient sql_mode for dates
// (whatever the source stored is written back) and no foreign key checks
// (chunks land in any order). The copy sets its own sessions on top
// (tablecopy.SetupSource, SetupTarget).
func dial(ctx context.Context, what string, s Server, opts ...client.Option) (*client.Conn, error) {
	c, err := s.Conn.Connect(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s %s: cannot connect as %s: check addr, user and password, and that the server is running: %w", what, s.Addr, s.User, err)
	}
	if _, err := c.Execute("SET NAMES utf8mb4, character_set_results=binary, time_zone='+00:00', foreign_key_checks=0, " +
		"sql_mode='NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES'"); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s %s: set up session: %w", what, s.Addr, err)
	}
	return c, nil
}

func queryString(c *client.Conn, q string) (string, error) {
	r, err := c.Execute(q)
	if err != nil {
		return "", err
	}
	if len(r.Values) == 0 {
		return "", nil
	}
	return r.GetString(0, 0)
}

func qualified(name string) string {
	schema, table, _ := splitName(name)
	return quoteIdent(schema) + "." + quoteIdent(table)
}

// gtidReached reports whether GTID set got contains every transaction of
// want (MariaDB "domain-server-seq" lists: per domain, seq at least want's;
// MySQL "uuid:interval" sets via go-mysql).
func gtidReached(got, want string) bool {
	want = strings.TrimSpace(want)
	if want == "" {
		return true
	}
	if strings.Contains(want, ":") {
		g, err1 := gomysql.ParseMysqlGTIDSet(got)
		w, err2 := gomysql.ParseMysqlGTIDSet(want)
		return err1 == nil && err2 == nil && g.Contain(w)
	}
	seqs := func(s string) map[string]uint64 {
		m := map[string]uint64{}
		for _, part := range strings.Split(s, ",") {
			f := strings.Split(strings.TrimSpace(part), "-")
			if len(f) != 3 {
				continue
			}
			n, _ := strconv.ParseUint(f[2], 10, 64)
			m[f[0]] = n
		}
		return m
	}
	g := seqs(got)
	for d, n := range seqs(want) {
		if g[d] < n {
			return false
		}
	}
	return true
}
