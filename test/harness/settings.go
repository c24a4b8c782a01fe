package harness

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// Settings are the server settings of one side of a matrix row: what a
// production server may run with that the tests must survive. The zero
// value is the harness's historical setup: character_set_server=utf8mb4,
// UTC, the server's default sql_mode.
type Settings struct {
	// NoCharset starts the server without --character-set-server, so the
	// server default applies (latin1 on MariaDB 10.x, as on many MySQL 5.7
	// and MariaDB installs).
	NoCharset bool
	// TimeZone is the server's default time_zone (e.g. "+08:00"); "" is
	// the server's default (SYSTEM).
	TimeZone string
	// SystemTZ is the TZ environment of the server process, hence its
	// system_time_zone (e.g. "Asia/Shanghai"); "" is UTC.
	SystemTZ string
	// SQLMode is the server's global sql_mode, the mode every client
	// session starts in; "" is the server's default.
	SQLMode string
	// LowerCaseTableNames sets lower_case_table_names (0 is the Linux
	// default, case-sensitive names).
	LowerCaseTableNames int
	// RowMetadata is binlog_row_metadata; "" is FULL (what Hamal needs).
	RowMetadata string
}

// args returns the mariadbd flags of s.
func (s Settings) args() []string {
	var a []string
	if !s.NoCharset {
		a = append(a, "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci")
	}
	if s.TimeZone != "" {
		a = append(a, "--default-time-zone="+s.TimeZone)
	}
	if s.SQLMode != "" {
		a = append(a, "--sql-mode="+s.SQLMode)
	}
	if s.LowerCaseTableNames != 0 {
		a = append(a, "--lower-case-table-names="+strconv.Itoa(s.LowerCaseTableNames))
	}
	if s.RowMetadata != "" {
		a = append(a, "--binlog-row-metadata="+s.RowMetadata)
	}
	return a
}

// env returns the server process's environment under s.
func (s Settings) env() []string {
	tz := "UTC"
	if s.SystemTZ != "" {
		tz = s.SystemTZ
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TZ=") {
			env = append(env, kv)
		}
	}
	return append(env, "TZ="+tz)
}

// NoBackslashEscapes reports whether clients of a server with s read '\'
// in string literals as itself (sql_mode NO_BACKSLASH_ESCAPES).
func (s Settings) NoBackslashEscapes() bool {
	return strings.Contains(strings.ToUpper(s.SQLMode), "NO_BACKSLASH_ESCAPES")
}

// ANSIQuotes reports whether clients of a server with s read "x" as an
// identifier (sql_mode ANSI_QUOTES).
func (s Settings) ANSIQuotes() bool {
	return strings.Contains(strings.ToUpper(s.SQLMode), "ANSI_QUOTES")
}

// MatrixRow is one row of the server-settings matrix: the settings of a
// source and of a target (in multi-site tests, of site A and site B).
type MatrixRow struct {
	Name           string
	Source, Target Settings
	// Refused is set for a row Hamal must refuse (hamal check names the
	// setting and the fix) instead of replicating.
	Refused bool
}

// Matrix is every row of the server-settings matrix.
var Matrix = []MatrixRow{
	{Name: "utf8mb4-utc"},
	{Name: "latin1-default", Source: Settings{NoCharset: true}, Target: Settings{NoCharset: true}},
	{Name: "tz-shanghai",
		Source: Settings{NoCharset: true, TimeZone: "+08:00", SystemTZ: "Asia/Shanghai"},
		Target: Settings{NoCharset: true, TimeZone: "+08:00", SystemTZ: "Asia/Shanghai"}},
	{Name: "ansi-quotes",
		Source: Settings{NoCharset: true, SQLMode: "ANSI_QUOTES,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES", TimeZone: "+08:00", SystemTZ: "Asia/Shanghai"},
		Target: Settings{NoCharset: true, SQLMode: "ANSI_QUOTES,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES", TimeZone: "+08:00", SystemTZ: "Asia/Shanghai"}},
	{Name: "lower-case-target", Target: Settings{LowerCaseTableNames: 1}},
	{Name: "row-metadata-minimal", Source: Settings{RowMetadata: "MINIMAL"}, Refused: true},
}

// representative is the slice of the matrix `make test` runs: the row
// that departs most from the historical setup at once (no charset option,
// so latin1; +08:00 with TZ Asia/Shanghai; ANSI_QUOTES and
// NO_BACKSLASH_ESCAPES), so the default suite costs one row.
var representative = map[string]bool{"ansi-quotes": true}

// MatrixRows returns the rows a test runs: every row with HAMAL_MATRIX=all
// (make test-matrix), one named row with HAMAL_MATRIX=<name>, else the
// representative slice. With refused it returns the rows Hamal must refuse
// instead (all of them: a refusal is quick), otherwise it leaves them out.
func MatrixRows(t testing.TB, refused bool) []MatrixRow {
	t.Helper()
	sel := os.Getenv("HAMAL_MATRIX")
	var rows []MatrixRow
	for _, r := range Matrix {
		switch {
		case r.Refused != refused:
		case refused, sel == "all", sel == r.Name, sel == "" && representative[r.Name]:
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 && !refused {
		t.Fatalf("HAMAL_MATRIX=%q names no row of the matrix (all, or one of %s)", sel, matrixNames())
	}
	return rows
}

func matrixNames() string {
	var n []string
	for _, r := range Matrix {
		n = append(n, r.Name)
	}
	return strings.Join(n, ", ")
}

// SelectedRow returns the matrix row HAMAL_MATRIX names, for a package
// whose shared server takes one row's settings (make test-matrix runs such
// a package once per row); ok is false when HAMAL_MATRIX names none.
func SelectedRow() (MatrixRow, bool) {
	sel := os.Getenv("HAMAL_MATRIX")
	for _, r := range Matrix {
		if r.Name == sel {
			return r, true
		}
	}
	return MatrixRow{}, false
}
