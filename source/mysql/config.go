package mysql

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config configures a MySQL or MariaDB source.
type Config struct {
	Addr     string // host:port
	User     string
	Password string
	// ServerID is the replica server_id Hamal registers with. It must be
	// non-zero and unique among the source's replicas.
	ServerID uint32
	// Flavor is "mysql", "mariadb", or "" to detect it from SELECT VERSION().
	Flavor string
	// Start is where a channel without a checkpoint begins: "current"
	// (default), "earliest", a GTID set ("0-1-100,1-2-5" on MariaDB,
	// "uuid:1-5" on MySQL: streaming starts after it) or "file:pos"
	// ("bin.000002:4"). "snapshot" is accepted by the preflight but handled
	// by the channel (package snapshot), which opens the source at the
	// position its copy was taken at.
	Start string
	// Tables holds include globs on "schema.table" (path.Match syntax,
	// "app.*"); empty means all tables. Exclude globs win over Tables.
	Tables  []string
	Exclude []string
	// HamalSchema is where Hamal keeps its own tables (default "hamal"):
	// never forwarded as data; origin markers there set Txn.Path/Origin,
	// and the heartbeat writer writes hamal.heartbeat there.
	HamalSchema string
	Logger      *slog.Logger
	// TLS, when set, encrypts every connection to the source (binlog dump,
	// metadata, heartbeat) and verifies the server as it says.
	TLS *tls.Config
	// ChunkRows and ChunkBytes bound how much of one source transaction
	// the reader holds: once the changes read so far reach either (bytes
	// of binlog row events), it returns them as a Partial Txn and goes on
	// with the rest. Zero means the defaults, 10,000 rows and 8 MiB.
	ChunkRows  int
	ChunkBytes int

	// readTimeout overrides how long Next may wait without hearing from
	// the source (tests shorten it); zero means readTimeout.
	readTimeout time.Duration
}

const (
	defaultChunkRows  = 10_000
	defaultChunkBytes = 8 << 20
)

// Flavors.
const (
	FlavorMySQL   = "mysql"
	FlavorMariaDB = "mariadb"
)

// Report is the result of Preflight.
type Report struct {
	Flavor   string
	Version  string
	Problems []Problem
	// Tables lists the base tables matching the filters.
	Tables []TableInfo
}

// Problem is one reason the source cannot be replicated, with the fix.
type Problem struct {
	What string // e.g. "binlog_format is STATEMENT, Hamal needs ROW"
	Fix  string
}

// TableInfo describes one table matching the filters.
type TableInfo struct {
	Schema, Name string
	Columns      []string
	// HasKey is true when the table has a primary key or a unique key whose
	// columns are all NOT NULL, so its rows can be identified.
	HasKey bool
}

// ErrPreflight is matched (errors.Is) by the error Open returns when the
// preflight found problems. ErrUnreachable is matched as well when one of
// them is that the server could not be reached at all.
var (
	ErrPreflight   = errors.New("source preflight failed")
	ErrUnreachable = errors.New("source unreachable")
)

// PreflightError lists every problem Preflight found. It is fatal.
type PreflightError struct {
	Addr     string
	Problems []Problem
}

func (e *PreflightError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source %s is not ready for replication:", e.Addr)
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  - %s; fix: %s", p.What, p.Fix)
	}
	return b.String()
}

// Is matches ErrPreflight, and ErrUnreachable when the server could not be
// reached.
func (e *PreflightError) Is(target error) bool {
	if target == ErrPreflight {
		return true
	}
	if target == ErrUnreachable {
		for _, p := range e.Problems {
			if strings.HasPrefix(p.What, "cannot reach source") {
				return true
			}
		}
	}
	return false
}

// startSpec is a parsed Config.Start.
type startSpec struct {
	kind string // "current", "earliest", "gtid", "filepos", "snapshot"
	gtid string
	file string
	pos  uint32
}

var (
	mysqlGTIDSet   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?::|$)`)
	mariadbGTIDSet = regexp.MustCompile(`^\s*\d+-\d+-\d+(?:\s*,\s*\d+-\d+-\d+)*\s*$`)
	filePos        = regexp.MustCompile(`^(.+):(\d+)$`)
)

func parseStart(s string) (startSpec, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "current":
		return startSpec{kind: "current"}, nil
	case "earliest":
		return startSpec{kind: "earliest"}, nil
	case "snapshot":
		return startSpec{kind: "snapshot"}, nil
	}
	if mysqlGTIDSet.MatchString(s) || mariadbGTIDSet.MatchString(s) {
		return startSpec{kind: "gtid", gtid: strings.ReplaceAll(s, " ", "")}, nil
	}
	if m := filePos.FindStringSubmatch(s); m != nil {
		pos, err := strconv.ParseUint(m[2], 10, 32)
		if err == nil {
			return startSpec{kind: "filepos", file: m[1], pos: uint32(pos)}, nil
		}
	}
	return startSpec{}, fmt.Errorf("source.start %q is not snapshot, current, earliest, a GTID set or file:pos", s)
}
