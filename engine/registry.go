package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hamal-replication/hamal/config"
)

// Registry holds the drivers of one build, by name. It resolves
// source.kind and sink.kind for config (it implements config.Kinds); the
// list itself is built in one place, package engine/registry.
type Registry struct {
	drivers map[string]Driver
}

var _ config.Kinds = (*Registry)(nil)

// NewRegistry returns a registry of drivers. Two drivers of one name, or
// one without a name or a side, are a programmer error: it panics.
func NewRegistry(drivers ...Driver) *Registry {
	r := &Registry{drivers: map[string]Driver{}}
	for _, d := range drivers {
		if d.Name == "" || (d.NewSource == nil && d.NewSink == nil) {
			panic(fmt.Sprintf("engine: driver %q has no name or no side", d.Name))
		}
		if _, dup := r.drivers[d.Name]; dup {
			panic(fmt.Sprintf("engine: driver %q registered twice", d.Name))
		}
		r.drivers[d.Name] = d
	}
	return r
}

// Load reads and validates a channel config whose engines are in r.
func (r *Registry) Load(path string) (*config.Config, error) { return config.Load(path, r) }

// Parse decodes and validates channel config text whose engines are in r.
func (r *Registry) Parse(data []byte) (*config.Config, error) { return config.Parse(data, r) }

// Driver returns the driver named name.
func (r *Registry) Driver(name string) (Driver, bool) {
	d, ok := r.drivers[name]
	return d, ok
}

// Names lists the engines that can be a source and those that can be a
// sink, sorted.
func (r *Registry) Names() (sources, sinks []string) {
	for name, d := range r.drivers {
		if d.NewSource != nil {
			sources = append(sources, name)
		}
		if d.NewSink != nil {
			sinks = append(sinks, name)
		}
	}
	sort.Strings(sources)
	sort.Strings(sinks)
	return sources, sinks
}

// SourceBlock implements config.Kinds.
func (r *Registry) SourceBlock(kind string) (config.Block, error) {
	sources, _ := r.Names()
	d, err := r.resolve(kind, "source", sources, func(d Driver) bool { return d.NewSource != nil })
	if err != nil {
		return nil, err
	}
	return d.NewSource(), nil
}

// SinkBlock implements config.Kinds.
func (r *Registry) SinkBlock(kind string) (config.Block, error) {
	_, sinks := r.Names()
	d, err := r.resolve(kind, "sink", sinks, func(d Driver) bool { return d.NewSink != nil })
	if err != nil {
		return nil, err
	}
	return d.NewSink(), nil
}

func (r *Registry) resolve(kind, role string, can []string, plays func(Driver) bool) (Driver, error) {
	supported := "supported: " + strings.Join(can, ", ")
	d, known := r.drivers[kind]
	switch {
	case known && plays(d):
		return d, nil
	case kind == "":
		return Driver{}, fmt.Errorf("required; %s", supported)
	case known:
		return Driver{}, fmt.Errorf("%q cannot be a %s; %s", kind, role, supported)
	}
	if s := config.Suggest(kind, can); s != "" {
		return Driver{}, fmt.Errorf("unknown kind %q; did you mean %q? %s", kind, s, supported)
	}
	return Driver{}, fmt.Errorf("unknown kind %q; %s", kind, supported)
}
