package reshard

import "strings"

// quoteString returns s as a SQL string literal with backslash escapes
// (the sessions of this package set their own sql_mode, never
// NO_BACKSLASH_ESCAPES).
func quoteString(s string) string {
	return "'" + escape(s) + "'"
}

func escape(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// quoteIdent returns a backquoted identifier.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
