package kafka

import (
	"path"

	"github.com/hamal-replication/hamal/event"
)

// DefaultHamalSchema is the schema of Hamal's own tables on a target,
// which no envelope may write.
const DefaultHamalSchema = "hamal"

// tableFilter decides which changes the source applies: those of tables
// matching Config.Tables (all when empty) and not Config.Exclude, never
// one of Hamal's own schema, whatever the envelope says. Anyone who can
// produce to the topic can name any table; the filter is what bounds
// what they reach.
type tableFilter struct {
	include, exclude []string
	hamalSchema      string
}

func newTableFilter(cfg Config) tableFilter {
	f := tableFilter{include: cfg.Tables, exclude: cfg.Exclude, hamalSchema: cfg.HamalSchema}
	if f.hamalSchema == "" {
		f.hamalSchema = DefaultHamalSchema
	}
	return f
}

// verdict is what the filter does with a change.
type verdict uint8

const (
	keep       verdict = iota + 1
	filtered           // not in source.tables, or in source.exclude
	hamalTable         // names Hamal's own schema: never applied
)

func (f tableFilter) judge(c *event.Change) verdict {
	schema, name := "", ""
	if c.Table != nil {
		schema, name = c.Table.Schema, c.Table.Name
	}
	if schema == f.hamalSchema {
		return hamalTable
	}
	ns := schema + "." + name
	if len(f.include) > 0 && !matchAny(f.include, ns) {
		return filtered
	}
	if matchAny(f.exclude, ns) {
		return filtered
	}
	return keep
}

func matchAny(globs []string, ns string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, ns); ok {
			return true
		}
	}
	return false
}
