package redact

import (
	"strings"
	"unicode"
)

// Mark replaces what was removed.
const Mark = "…"

// identifiers are the words after which a quoted string is a name, not
// data.
var identifiers = map[string]bool{
	"table": true, "column": true, "database": true, "schema": true, "index": true,
	"constraint": true, "plugin": true, "tables": true, "columns": true,
}

// Message returns msg with its row data replaced by Mark.
func Message(msg string) string {
	var b strings.Builder
	b.Grow(len(msg))
	for i := 0; i < len(msg); {
		c := msg[i]
		switch {
		case (c == '\'' || c == '"') && (i == 0 || !isWordByte(msg[i-1])):
			// A quote after a letter is an apostrophe (doesn't).
			end := closing(msg, i)
			if identifiers[wordBefore(msg, i)] {
				b.WriteString(msg[i:end])
			} else {
				b.WriteByte(c)
				b.WriteString(Mark)
				if end > i+1 && end <= len(msg) && msg[end-1] == c {
					b.WriteByte(c)
				}
			}
			i = end
		case c == '{' && strings.HasSuffix(strings.TrimRight(msg[:i], " "), "dup key:"):
			end := strings.IndexByte(msg[i:], '}')
			if end < 0 {
				end = len(msg) - i - 1
			}
			b.WriteString("{" + Mark + "}")
			i += end + 1
		case c == '0' && i+1 < len(msg) && (msg[i+1] == 'x' || msg[i+1] == 'X') && hexRun(msg[i+2:]) >= 8:
			b.WriteString("0x" + Mark)
			i += 2 + hexRun(msg[i+2:])
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// closing returns the index after the quoted string starting at open:
// past its closing quote, or len(s) when it is not closed. Backslash
// escapes and a doubled quote stay inside.
func closing(s string, open int) int {
	q := s[open]
	for i := open + 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			if i+1 < len(s) && s[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(s)
}

// wordBefore is the lower-case word ending before position i, skipping
// spaces and a colon.
func wordBefore(s string, i int) string {
	j := i
	for j > 0 && (s[j-1] == ' ' || s[j-1] == ':') {
		j--
	}
	k := j
	for k > 0 && (unicode.IsLetter(rune(s[k-1])) || s[k-1] == '_') {
		k--
	}
	return strings.ToLower(s[k:j])
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func hexRun(s string) int {
	n := 0
	for n < len(s) && strings.IndexByte("0123456789abcdefABCDEF", s[n]) >= 0 {
		n++
	}
	return n
}
