package mysql

import (
	"strconv"
	"strings"
)

// serverVersion is the source server as its executable comments see it.
type serverVersion struct {
	mariaDB bool
	// n is major*10000 + minor*100 + patch (MySQL 8.0.36: 80036, MariaDB
	// 10.11.8: 101108); 0 when unknown, and then every versioned
	// executable comment counts as executed.
	n int
}

// parseServerVersion reads VERSION()'s text ("10.11.8-MariaDB-log",
// "8.0.36").
func parseServerVersion(flavor, version string) serverVersion {
	v := serverVersion{mariaDB: flavor == FlavorMariaDB || strings.Contains(strings.ToLower(version), "mariadb")}
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 3 {
		return v
	}
	num := func(s string) (int, bool) {
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(s[:end])
		return n, err == nil && end > 0
	}
	major, ok1 := num(parts[0])
	minor, ok2 := num(parts[1])
	patch, ok3 := num(parts[2])
	if ok1 && ok2 && ok3 && minor < 100 && patch < 100 {
		v.n = major*10000 + minor*100 + patch
	}
	return v
}

// executes reports whether a comment requiring version need (0: none)
// runs on the server.
func (v serverVersion) executes(need int) bool { return v.n == 0 || need <= v.n }

// executableText is stmt as the server executes it: comments removed,
// executable comments kept when the server runs them (/*! … */, with a
// 5- or 6-digit version /*!NNNNN … */ for that version and later;
// /*M! … */ and /*M!NNNNNN … */ on MariaDB only; optimizer hints /*+ … */
// and all else are comments). Quoted strings and names are kept whole, so
// a "/*" inside one is text. Filters decide on this text: a statement
// hidden in an executable comment is still the statement that runs.
//
// mode is the sql_mode the statement was written under: with
// NO_BACKSLASH_ESCAPES a backslash in a string is itself, with ANSI_QUOTES
// "x" is a name.
func executableText(stmt string, v serverVersion, mode sqlMode) string {
	var b strings.Builder
	b.Grow(len(stmt))
	for i := 0; i < len(stmt); {
		c := stmt[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			end := quoteEnd(stmt, i, mode)
			b.WriteString(stmt[i:end])
			i = end
		case c == '/' && strings.HasPrefix(stmt[i:], "/*"):
			b.WriteByte(' ')
			if body, run := executableBody(stmt[i+2:], v); run {
				// The server reads an executed comment's body as
				// statement text: a "*/" inside a quoted string is text.
				start := len(stmt) - len(body)
				end := executableEnd(stmt, start, mode)
				b.WriteString(executableText(stmt[start:end], v, mode))
				b.WriteByte(' ')
				i = min(end+2, len(stmt))
				continue
			}
			end := strings.Index(stmt[i+2:], "*/")
			if end < 0 {
				i = len(stmt)
			} else {
				i += 2 + end + 2
			}
		case c == '#' || c == '-' && strings.HasPrefix(stmt[i:], "--") && (i+2 == len(stmt) || isSpaceByte(stmt[i+2])):
			end := strings.IndexByte(stmt[i:], '\n')
			if end < 0 {
				end = len(stmt) - i
			}
			b.WriteByte(' ')
			i += end
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// executableEnd returns the index of the "*/" closing the executed
// comment whose body starts at s[i], skipping quoted strings and names;
// len(s) when it is not closed.
func executableEnd(s string, i int, mode sqlMode) int {
	for i < len(s) {
		switch c := s[i]; {
		case c == '\'' || c == '"' || c == '`':
			i = quoteEnd(s, i, mode)
		case c == '*' && i+1 < len(s) && s[i+1] == '/':
			return i
		default:
			i++
		}
	}
	return len(s)
}

// executableBody returns the statement text of a comment's inside (what
// follows "/*", to the end of the statement) and whether the server runs
// it.
func executableBody(inside string, v serverVersion) (string, bool) {
	switch {
	case strings.HasPrefix(inside, "!"):
		inside = inside[1:]
	case strings.HasPrefix(inside, "M!"):
		if !v.mariaDB {
			return "", false
		}
		inside = inside[2:]
	default:
		return "", false
	}
	digits := 0
	for digits < len(inside) && digits < 6 && inside[digits] >= '0' && inside[digits] <= '9' {
		digits++
	}
	if digits < 5 {
		return inside, true // no version: always run
	}
	need, _ := strconv.Atoi(inside[:digits])
	return inside[digits:], v.executes(need)
}

// quoteEnd returns the index after the quoted string or name starting at
// s[i] (a doubled quote inside; backslash escapes in strings unless mode
// has NO_BACKSLASH_ESCAPES, never in names: backticks, and double quotes
// under ANSI_QUOTES); an unterminated one runs to the end.
func quoteEnd(s string, i int, mode sqlMode) int {
	q := s[i]
	escapes := !mode.noBackslash() && (q == '\'' || q == '"' && !mode.ansiQuotes())
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if escapes {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
