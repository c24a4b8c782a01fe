package config

import (
	"path/filepath"
	"time"
)

// Relay configures the optional local relay log between the source and the
// applier (docs/relay.md): the source is read at full speed into segment
// files under Dir, and the applier reads from them.
type Relay struct {
	Dir string `yaml:"dir"` // a directory Hamal owns, one per channel
	// MaxBytes bounds the segment files; when full, reading the source
	// waits (backpressure, never loss). Default 1 GiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxAge bounds how long applied records stay on disk in a segment that
	// is not full yet. Unapplied records are never removed. Default 10m.
	MaxAge time.Duration `yaml:"max_age"`
	// Fsync is always | batch | never; default batch (see docs/relay.md).
	Fsync string `yaml:"fsync"`
}

// Relay defaults.
const (
	DefaultRelayMaxBytes = 1 << 30
	DefaultRelayMaxAge   = 10 * time.Minute
	DefaultRelayFsync    = "batch"
	minRelayMaxBytes     = 1 << 20
)

// validateRelay checks the relay block, when there is one.
func validateRelay(c *Config, bad func(string, ...any)) {
	r := c.Relay
	if r == nil {
		return
	}
	if r.Dir == "" {
		bad("relay.dir: required with relay; a directory Hamal owns, e.g. /var/lib/hamal/%s/relay", c.Name)
	} else if c.Checkpoint.Dir != "" && filepath.Clean(r.Dir) == filepath.Clean(c.Checkpoint.Dir) {
		bad("relay.dir: %s is checkpoint.dir; give the relay its own directory, e.g. %s", r.Dir, filepath.Join(r.Dir, "relay"))
	}
	switch {
	case r.MaxBytes == 0:
		r.MaxBytes = DefaultRelayMaxBytes
	case r.MaxBytes < minRelayMaxBytes:
		bad("relay.max_bytes: %d is below 1 MiB (%d); the relay needs room for several segments, e.g. max_bytes: 1073741824", r.MaxBytes, minRelayMaxBytes)
	}
	switch {
	case r.MaxAge == 0:
		r.MaxAge = DefaultRelayMaxAge
	case r.MaxAge < 0:
		bad("relay.max_age: must be positive, e.g. 10m")
	}
	switch r.Fsync {
	case "":
		r.Fsync = DefaultRelayFsync
	case "always", "batch", "never":
	default:
		bad("relay.fsync: %q is not one of always, batch, never", r.Fsync)
	}
}
