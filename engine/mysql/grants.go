package mysql

import (
	"context"
	"fmt"

	"github.com/hamal-replication/hamal/engine"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// checkGrants reports the least privileges (docs/deploy.md) the account
// of side ("source" or "sink") lacks, each with the GRANT that fixes it.
func checkGrants(ctx context.Context, r *engine.Report, side string, c Conn, needs []srcmysql.Need) {
	g, err := showGrants(ctx, c)
	if err != nil {
		r.Fail(fmt.Sprintf("%s %s: SHOW GRANTS: %v", side, c.Addr, err), "check "+side+".user and "+side+".password")
		return
	}
	fixes := g.Missing(needs)
	for _, fix := range fixes {
		r.Fail(fmt.Sprintf("%s.user %s lacks a privilege Hamal needs (grants through roles are not seen)", side, c.User), fix)
	}
	if len(fixes) == 0 {
		r.OK("%s.user %s has the privileges Hamal needs", side, c.User)
	}
}

// showGrants connects as the account and reads its grants.
func showGrants(ctx context.Context, c Conn) (srcmysql.Grants, error) {
	conn, err := c.Connect(ctx)
	if err != nil {
		return srcmysql.Grants{}, err
	}
	defer conn.Close()
	// SHOW GRANTS quotes names as the session's sql_mode says: under a
	// server's ANSI_QUOTES, "app".* instead of a backquoted name, which the
	// grants reader does not parse. A session of its own needs no mode.
	if _, err := conn.Execute("SET SESSION sql_mode=''"); err != nil {
		return srcmysql.Grants{}, err
	}
	return srcmysql.ReadGrants(conn)
}

// sinkNeeds are the target account's least privileges for the schemas the
// channel replicates into, and for Hamal's own tables when the loop guard
// is on (sink.site set).
func sinkNeeds(schemas []string, hamalSchema string, site bool) []srcmysql.Need {
	var n []srcmysql.Need
	for _, s := range schemas {
		n = append(n, srcmysql.Need{Privs: []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, DB: s, Table: "*", Why: "apply rows"},
			srcmysql.Need{Privs: []string{"CREATE", "DROP", "ALTER", "INDEX"}, DB: s, Table: "*", Why: "apply replicated DDL"})
	}
	if !site {
		return n
	}
	return append(n, srcmysql.Need{Privs: []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE"}, DB: hamalSchema, Table: "*",
		Why: "origin markers, conflicts and unsynced owners in " + hamalSchema + ".* (sink.site)"})
}
