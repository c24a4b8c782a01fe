package config

import (
	"fmt"
	"sort"
)

// Kind holds the validation of one engine's keys. Source and Sink are nil
// when the engine cannot play that side. Each check fills its defaults and
// reports problems through bad, naming the key and the fix.
type Kind struct {
	Source func(c *Config, bad func(format string, args ...any))
	Sink   func(c *Config, bad func(format string, args ...any))
}

// kinds are the engines this build supports, by source.kind / sink.kind.
// Each engine registers itself from its own file.
var kinds = map[string]Kind{}

// planned names engines that are designed but not built, so a config that
// names one gets "not supported yet" rather than "unknown".
var planned = map[string]bool{"mongo": true, "mongodb": true, "kafka": true}

func register(name string, k Kind) {
	if _, dup := kinds[name]; dup {
		panic(fmt.Sprintf("config: kind %q registered twice", name))
	}
	kinds[name] = k
	delete(planned, name)
}

// Kinds lists the engines that can be a source and those that can be a
// sink, sorted.
func Kinds() (sources, sinks []string) {
	for name, k := range kinds {
		if k.Source != nil {
			sources = append(sources, name)
		}
		if k.Sink != nil {
			sinks = append(sinks, name)
		}
	}
	sort.Strings(sources)
	sort.Strings(sinks)
	return sources, sinks
}
