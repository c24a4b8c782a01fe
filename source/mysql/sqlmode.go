package mysql

import (
	"encoding/binary"
	"strings"
)

// sqlMode is the sql_mode a statement was written under, as the Query
// event's status variables carry it (the server's bit values).
type sqlMode uint64

// The sql_mode flags that change how a statement reads. The others
// (strictness, zero dates, …) are the sink's own business.
const (
	modeRealAsFloat        sqlMode = 1 << 0
	modePipesAsConcat      sqlMode = 1 << 1
	modeANSIQuotes         sqlMode = 1 << 2
	modeIgnoreSpace        sqlMode = 1 << 3
	modeOracle             sqlMode = 1 << 9
	modeNoBackslashEscapes sqlMode = 1 << 20
	modeHighNotPrecedence  sqlMode = 1 << 29
	modeEmptyStringIsNull  sqlMode = 1 << 32 // MariaDB
)

var readingModes = []struct {
	bit  sqlMode
	name string
}{
	{modeRealAsFloat, "REAL_AS_FLOAT"},
	{modePipesAsConcat, "PIPES_AS_CONCAT"},
	{modeANSIQuotes, "ANSI_QUOTES"},
	{modeIgnoreSpace, "IGNORE_SPACE"},
	{modeOracle, "ORACLE"},
	{modeNoBackslashEscapes, "NO_BACKSLASH_ESCAPES"},
	{modeHighNotPrecedence, "HIGH_NOT_PRECEDENCE"},
}

func (m sqlMode) ansiQuotes() bool   { return m&modeANSIQuotes != 0 }
func (m sqlMode) noBackslash() bool  { return m&modeNoBackslashEscapes != 0 }
func (m sqlMode) has(b sqlMode) bool { return m&b != 0 }

// reading returns the flags of m that change how a statement reads, as
// sql_mode names ("ANSI_QUOTES,NO_BACKSLASH_ESCAPES"); "" for none. A
// sink runs the statement with them added to its own mode.
func (m sqlMode) reading() string {
	var names []string
	for _, f := range readingModes {
		if m.has(f.bit) {
			names = append(names, f.name)
		}
	}
	if m.has(modeEmptyStringIsNull) {
		names = append(names, "EMPTY_STRING_IS_NULL")
	}
	return strings.Join(names, ",")
}

// String names the flags of m that change how a statement reads.
func (m sqlMode) String() string {
	if r := m.reading(); r != "" {
		return r
	}
	return "(none that change parsing)"
}

// Query event status variable codes (the server's log_event.h) up to
// Q_SQL_MODE_CODE, which the server writes second, after Q_FLAGS2_CODE.
const (
	qFlags2Code  = 0
	qSQLModeCode = 1
)

// sqlModeOf reads the sql_mode from a Query event's status variables; ok
// is false when they do not carry one.
func sqlModeOf(status []byte) (sqlMode, bool) {
	for i := 0; i < len(status); {
		switch status[i] {
		case qFlags2Code:
			i += 1 + 4
		case qSQLModeCode:
			if i+9 > len(status) {
				return 0, false
			}
			return sqlMode(binary.LittleEndian.Uint64(status[i+1 : i+9])), true
		default:
			return 0, false // written after sql_mode: it is not there
		}
	}
	return 0, false
}
