package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/mysqlconn"
	"github.com/hamal-replication/hamal/tlslink"
)

// Preflight checks a source without streaming: connectivity and
// credentials, log_bin, binlog_format, binlog_row_image,
// binlog_row_metadata, the REPLICATION SLAVE grant, server_id clashes, the
// start position's syntax, and lists the tables matching the filters.
// Problems go into the Report; the error is for failures of the check
// itself (a query that should work did not).
func Preflight(ctx context.Context, cfg Config) (*Report, error) {
	rep, conn, _, err := preflight(ctx, cfg, false)
	if conn != nil {
		conn.Close()
	}
	return rep, err
}

// serverState is what preflight learned and Open reuses.
type serverState struct {
	serverID uint32
	gtidMode bool // MySQL gtid_mode=ON; always true on MariaDB
}

const connectTimeout = 10 * time.Second

// queryTimeout bounds each read and write on the preflight and metadata
// connection, so a hung server cannot block Open or Next forever.
const queryTimeout = 30 * time.Second

// connect opens a metadata session through mysqlconn: TLS when
// configured and never clear text then, no login that would expose the
// password, the login bounded by connectTimeout.
func connect(ctx context.Context, cfg Config) (*client.Conn, error) {
	return mysqlconn.Connect(ctx, mysqlconn.Target{Addr: cfg.Addr, User: cfg.User, Password: cfg.Password,
		TLS: cfg.TLS, Key: "source.tls", Timeout: connectTimeout},
		func(c *client.Conn) error {
			c.ReadTimeout, c.WriteTimeout = queryTimeout, queryTimeout
			return nil
		})
}

// connectProblem turns a connection error into a Problem.
func connectProblem(cfg Config, err error) Problem {
	switch {
	case errors.Is(err, mysqlconn.ErrPasswordExposed):
		return Problem{What: fmt.Sprintf("source %s: %v", cfg.Addr, err), Fix: "enable source.tls, or change the account's authentication plugin"}
	case errors.Is(err, tlslink.ErrTLS):
		var te *tlslink.Error
		if errors.As(err, &te) {
			return Problem{What: fmt.Sprintf("TLS to source %s failed: %s (%v)", cfg.Addr, te.Cause, te.Err), Fix: te.Fix}
		}
		return Problem{What: fmt.Sprintf("TLS to source %s failed: %v", cfg.Addr, err), Fix: "check source.tls"}
	case errors.Is(err, mysqlconn.ErrHandshakeTimeout):
		// Kept under "cannot reach source": a stalled server is an outage
		// the channel retries.
		return Problem{
			What: fmt.Sprintf("cannot reach source at %s: %v", cfg.Addr, err),
			Fix:  "check that source.addr is the server's MySQL port and that the server is not stalled",
		}
	}
	var myErr *gomysql.MyError
	if errors.As(err, &myErr) && (myErr.Code == gomysql.ER_ACCESS_DENIED_ERROR || myErr.Code == gomysql.ER_DBACCESS_DENIED_ERROR) {
		return Problem{
			What: fmt.Sprintf("access denied for user %s: check source.user/source.password", cfg.User),
			Fix:  fmt.Sprintf("use the right credentials, or CREATE USER '%s'@'%%' IDENTIFIED BY '...' and GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO it (server said: %s)", cfg.User, myErr.Message),
		}
	}
	if isNetworkError(err) || !errors.As(err, &myErr) {
		return Problem{
			What: fmt.Sprintf("cannot reach source at %s: check source.addr and that the server is up (%v)", cfg.Addr, err),
			Fix:  "start the server, or correct source.addr and any firewall between Hamal and the source",
		}
	}
	return Problem{What: fmt.Sprintf("cannot connect to source at %s: %v", cfg.Addr, err), Fix: "check source.addr, source.user and source.password"}
}

func isNetworkError(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, gomysql.ErrBadConn) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded)
}

// preflight runs the checks and, when the server answered, returns the
// connection for Open to reuse. resuming relaxes the server_id clash check:
// a previous connection of this very channel may still be listed by the
// source until it notices it is gone, and the server evicts a replica
// whose server_id registers again.
func preflight(ctx context.Context, cfg Config, resuming bool) (*Report, *client.Conn, serverState, error) {
	rep := &Report{Flavor: cfg.Flavor}
	var st serverState
	if cfg.ServerID == 0 {
		rep.Problems = append(rep.Problems, Problem{
			What: "source.server_id is not set",
			Fix:  "set source.server_id to a non-zero value no other replica of this source uses",
		})
	}
	if _, err := newFilter(cfg.Tables, cfg.Exclude, cfg.HamalSchema); err != nil {
		rep.Problems = append(rep.Problems, Problem{What: err.Error(), Fix: "fix the glob in source.tables/source.exclude (path.Match syntax, e.g. app.*)"})
	}
	switch cfg.Flavor {
	case "", FlavorMySQL, FlavorMariaDB:
	default:
		rep.Problems = append(rep.Problems, Problem{What: fmt.Sprintf("source.flavor %q is unknown", cfg.Flavor), Fix: `set source.flavor to "mysql", "mariadb" or leave it empty`})
	}
	if _, err := parseStart(cfg.Start); err != nil {
		rep.Problems = append(rep.Problems, Problem{What: err.Error(), Fix: `set source.start to "snapshot", "current", "earliest", a GTID set or "file:pos"`})
	}

	conn, err := connect(ctx, cfg)
	if err != nil {
		rep.Problems = append(rep.Problems, connectProblem(cfg, err))
		return rep, nil, st, nil
	}
	fail := func(err error) (*Report, *client.Conn, serverState, error) {
		conn.Close()
		return rep, nil, st, err
	}

	res, err := conn.Execute("SELECT VERSION()")
	if err != nil {
		return fail(fmt.Errorf("preflight: select version: %w", err))
	}
	rep.Version, _ = res.GetString(0, 0)
	isMariaDB := strings.Contains(strings.ToLower(rep.Version), "mariadb")
	if rep.Flavor == "" {
		rep.Flavor = FlavorMySQL
		if isMariaDB {
			rep.Flavor = FlavorMariaDB
		}
	} else if (rep.Flavor == FlavorMariaDB) != isMariaDB {
		rep.Problems = append(rep.Problems, Problem{
			What: fmt.Sprintf("source.flavor is %s but the server is %s", rep.Flavor, rep.Version),
			Fix:  "leave source.flavor empty to detect it, or set it to match the server",
		})
	}

	vars, err := globalVariables(conn, "log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata", "server_id", "gtid_mode")
	if err != nil {
		return fail(fmt.Errorf("preflight: read variables: %w", err))
	}
	if v := strings.ToUpper(vars["log_bin"]); v != "ON" && v != "1" {
		rep.Problems = append(rep.Problems, Problem{
			What: "log_bin is OFF: the source writes no binary log",
			Fix:  "set log_bin (log-bin=<basename> in my.cnf) and a unique server_id on the server; log_bin takes effect when the server starts",
		})
	}
	if v := strings.ToUpper(vars["binlog_format"]); v != "ROW" {
		rep.Problems = append(rep.Problems, Problem{
			What: fmt.Sprintf("binlog_format is %s, Hamal needs ROW", v),
			Fix:  "SET GLOBAL binlog_format=ROW, and binlog_format=ROW in my.cnf so a server restart keeps it; sessions opened before the change keep the old value until they reconnect",
		})
	}
	if v := strings.ToUpper(vars["binlog_row_image"]); v != "FULL" {
		rep.Problems = append(rep.Problems, Problem{
			What: fmt.Sprintf("binlog_row_image is %s, Hamal needs FULL", v),
			Fix:  "SET GLOBAL binlog_row_image=FULL, and binlog_row_image=FULL in my.cnf so a server restart keeps it; sessions opened before the change keep the old value until they reconnect",
		})
	}
	if v, ok := vars["binlog_row_metadata"]; !ok {
		rep.Problems = append(rep.Problems, Problem{
			What: fmt.Sprintf("binlog_row_metadata is not supported by %s: Hamal needs column names in the binlog", rep.Version),
			Fix:  "upgrade the source to MySQL 8.0.1+ or MariaDB 10.5+",
		})
	} else if strings.ToUpper(v) != "FULL" {
		rep.Problems = append(rep.Problems, Problem{
			What: fmt.Sprintf("binlog_row_metadata is %s, Hamal needs FULL", strings.ToUpper(v)),
			Fix:  "SET GLOBAL binlog_row_metadata=FULL, and binlog_row_metadata=FULL in my.cnf so a server restart keeps it; sessions opened before the change keep the old value until they reconnect",
		})
	}
	if id, err := strconv.ParseUint(vars["server_id"], 10, 32); err == nil {
		st.serverID = uint32(id)
	}
	st.gtidMode = isMariaDB || strings.HasPrefix(strings.ToUpper(vars["gtid_mode"]), "ON")

	if p, err := checkGrants(conn); err != nil {
		return fail(fmt.Errorf("preflight: show grants: %w", err))
	} else if p != nil {
		rep.Problems = append(rep.Problems, *p)
	}

	if cfg.ServerID != 0 {
		if cfg.ServerID == st.serverID {
			rep.Problems = append(rep.Problems, Problem{
				What: fmt.Sprintf("source.server_id %d equals the source's own server_id", cfg.ServerID),
				Fix:  "choose a source.server_id no server or replica in the topology uses",
			})
		} else if used, err := replicaServerIDs(conn, isMariaDB); err == nil && used[cfg.ServerID] {
			if resuming {
				cfgLogger(cfg).Warn("source lists a replica with Hamal's server_id; assuming it is this channel's previous connection, which the source evicts on re-register",
					"server_id", cfg.ServerID)
			} else {
				rep.Problems = append(rep.Problems, Problem{
					What: fmt.Sprintf("source.server_id %d is already used by another replica connected to the source (SHOW SLAVE HOSTS)", cfg.ServerID),
					Fix:  "choose a source.server_id no other replica uses; two replicas with one server_id evict each other",
				})
			}
		}
	}

	tables, err := listTables(conn, cfg)
	if err != nil {
		return fail(fmt.Errorf("preflight: list tables: %w", err))
	}
	rep.Tables = tables
	return rep, conn, st, nil
}

func cfgLogger(cfg Config) *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	return slog.Default()
}

// globalVariables reads the named global variables; missing ones are
// absent from the map.
func globalVariables(conn *client.Conn, names ...string) (map[string]string, error) {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "'" + n + "'"
	}
	res, err := conn.Execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + strings.Join(quoted, ",") + ")")
	if err != nil {
		return nil, err
	}
	vars := make(map[string]string, len(names))
	for i := 0; i < res.RowNumber(); i++ {
		name, _ := res.GetString(i, 0)
		value, _ := res.GetString(i, 1)
		vars[strings.ToLower(name)] = value
	}
	return vars, nil
}

// checkGrants looks for REPLICATION SLAVE (REPLICATION REPLICA on MySQL
// 8.0.22+) or ALL PRIVILEGES on *.* in SHOW GRANTS. Privileges that only
// arrive through a role that is not listed are not seen.
func checkGrants(conn *client.Conn) (*Problem, error) {
	g, err := ReadGrants(conn)
	if err != nil {
		return nil, err
	}
	if g.Has("REPLICATION SLAVE", "*", "*") {
		return nil, nil
	}
	user := g.User()
	if user == "" {
		user = "the source.user account"
	}
	return &Problem{
		What: "source.user lacks the REPLICATION SLAVE privilege",
		Fix:  fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO %s", user),
	}, nil
}

// replicaServerIDs lists the server_ids of replicas registered with the
// source.
func replicaServerIDs(conn *client.Conn, isMariaDB bool) (map[uint32]bool, error) {
	queries := []string{"SHOW SLAVE HOSTS"}
	if !isMariaDB {
		queries = []string{"SHOW REPLICAS", "SHOW SLAVE HOSTS"}
	}
	var lastErr error
	for _, q := range queries {
		res, err := conn.Execute(q)
		if err != nil {
			lastErr = err
			continue
		}
		ids := make(map[uint32]bool)
		col, err := res.NameIndex("Server_id")
		if err != nil {
			col = 0
		}
		for i := 0; i < res.RowNumber(); i++ {
			id, err := res.GetUint(i, col)
			if err == nil {
				ids[uint32(id)] = true
			}
		}
		return ids, nil
	}
	return nil, lastErr
}

// listTables lists the base tables matching the filters, with their
// columns and whether they have a usable key.
func listTables(conn *client.Conn, cfg Config) ([]TableInfo, error) {
	f, err := newFilter(cfg.Tables, cfg.Exclude, cfg.HamalSchema)
	if err != nil {
		return nil, nil // reported as a problem already
	}
	res, err := conn.Execute(`SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME
		FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
		  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
		WHERE t.TABLE_TYPE = 'BASE TABLE'
		  AND c.TABLE_SCHEMA NOT IN ('mysql','information_schema','performance_schema','sys','hamal')
		ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION`)
	if err != nil {
		return nil, err
	}
	byName := map[string]*TableInfo{}
	var order []string
	for i := 0; i < res.RowNumber(); i++ {
		schema, _ := res.GetString(i, 0)
		name, _ := res.GetString(i, 1)
		col, _ := res.GetString(i, 2)
		if !f.matchTable(schema, name) {
			continue
		}
		key := schema + "." + name
		ti := byName[key]
		if ti == nil {
			ti = &TableInfo{Schema: schema, Name: name}
			byName[key] = ti
			order = append(order, key)
		}
		ti.Columns = append(ti.Columns, col)
	}
	// A key identifies rows when it is the primary key or a unique key
	// with no nullable column.
	res, err = conn.Execute(`SELECT s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME,
		  SUM(CASE WHEN c.IS_NULLABLE = 'YES' THEN 1 ELSE 0 END)
		FROM information_schema.STATISTICS s JOIN information_schema.COLUMNS c
		  ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
		WHERE s.NON_UNIQUE = 0
		  AND s.TABLE_SCHEMA NOT IN ('mysql','information_schema','performance_schema','sys','hamal')
		GROUP BY s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME`)
	if err != nil {
		return nil, err
	}
	for i := 0; i < res.RowNumber(); i++ {
		schema, _ := res.GetString(i, 0)
		name, _ := res.GetString(i, 1)
		nullable, _ := res.GetInt(i, 3)
		if ti := byName[schema+"."+name]; ti != nil && nullable == 0 {
			ti.HasKey = true
		}
	}
	sort.Strings(order)
	tables := make([]TableInfo, 0, len(order))
	for _, k := range order {
		tables = append(tables, *byName[k])
	}
	return tables, nil
}

// Connect opens a plain session on the source as cfg says (TLS, timeouts
// of 30 s per read and write), for the snapshot's and tools' own queries.
func Connect(ctx context.Context, cfg Config) (*client.Conn, error) { return connect(ctx, cfg) }
