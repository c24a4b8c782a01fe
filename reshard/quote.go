package reshard

import (
	"strings"

	"github.com/hamal-replication/hamal/shardrule"
)

// quoteString returns s as a SQL string literal with backslash escapes
// (the sessions of this package set their own sql_mode, never
// NO_BACKSLASH_ESCAPES).
func quoteString(s string) string { return shardrule.QuoteString(s) }

// quoteIdent returns a backquoted identifier.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
