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
// text compares and round-trips), utf8mb4, a lenient sql_mode for dates
// (whatever the source stored is written back) and no foreign key checks
// (chunks land in any order).
func dial(ctx context.Context, what string, s Server) (*client.Conn, error) {
	c, err := s.Conn.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: cannot connect as %s: check addr, user and password, and that the server is running: %w", what, s.Addr, s.User, err)
	}
	if _, err := c.Execute("SET NAMES utf8mb4, time_zone='+00:00', foreign_key_checks=0, " +
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

// appendValue appends a text-protocol value as a SQL literal; binary
// columns (charset 63) keep their bytes exactly via the _binary introducer.
func appendValue(b []byte, v *gomysql.FieldValue, binary bool) []byte {
	switch v.Type {
	case gomysql.FieldValueTypeNull:
		return append(b, "NULL"...)
	case gomysql.FieldValueTypeSigned:
		return strconv.AppendInt(b, v.AsInt64(), 10)
	case gomysql.FieldValueTypeUnsigned:
		return strconv.AppendUint(b, v.AsUint64(), 10)
	case gomysql.FieldValueTypeFloat:
		return strconv.AppendFloat(b, v.AsFloat64(), 'g', -1, 64)
	}
	if binary {
		b = append(b, "_binary"...)
	}
	b = append(b, '\'')
	b = appendEscaped(b, v.AsString())
	return append(b, '\'')
}

// appendEscaped appends s with the escapes quoteString uses.
func appendEscaped(b, s []byte) []byte {
	for _, c := range s {
		switch c {
		case 0:
			b = append(b, '\\', '0')
		case '\'':
			b = append(b, '\\', '\'')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case 0x1a:
			b = append(b, '\\', 'Z')
		default:
			b = append(b, c)
		}
	}
	return b
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
