package main

import (
	"context"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// showGrants connects as the configured account and reads its grants.
func showGrants(ctx context.Context, addr, user, password string, opts ...client.Option) (srcmysql.Grants, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := client.ConnectWithContext(ctx, addr, user, password, "", 10*time.Second, opts...)
	if err != nil {
		return srcmysql.Grants{}, err
	}
	defer conn.Close()
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
