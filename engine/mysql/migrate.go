package mysql

import (
	"context"

	"github.com/hamal-replication/hamal/engine"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// Need is one least privilege an account must hold (the GRANT that fixes
// a missing one is derived from it).
type Need = srcmysql.Need

// SnapshotPosition returns the source's exact snapshot position's GTID
// set (source/mysql's SnapshotPosition over the block's connection): every
// read started afterwards sees every transaction up to it.
func (c *SourceConfig) SnapshotPosition(ctx context.Context, env engine.Env) (string, error) {
	rc, err := c.ReaderConfig(env)
	if err != nil {
		return "", err
	}
	pos, err := srcmysql.SnapshotPosition(ctx, rc)
	if err != nil {
		return "", err
	}
	return pos.GTID, nil
}

// CheckPrivileges reports, as the channel checks do, the privileges among
// needs that the account lacks, each as a failed check naming the GRANT
// that fixes it; who names the account's role ("sources[0]").
func CheckPrivileges(ctx context.Context, r *engine.Report, who string, c Conn, needs []Need) {
	checkGrants(ctx, r, who, c, needs)
}

// Needs are the least privileges of this sink's account for the schemas
// it applies to, and for the hamal schema when site is set (the loop
// guard's markers and conflicts), as Check verifies them.
func (c *SinkConfig) Needs(schemas []string, site bool) []Need {
	return sinkNeeds(schemas, c.HamalSchema, site)
}
