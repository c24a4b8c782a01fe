// Package config loads a channel's YAML configuration. It knows no
// engine: it owns the keys every channel has (name, apply, checkpoint,
// admin, log, relay, and the keys every source and sink has: kind, site,
// source.forward) and the strict decoder the engines' keys go through.
//
// The rest of the source and sink mappings belongs to the engine that
// source.kind and sink.kind name. Parse asks a Kinds (the registry of
// engine drivers, package engine) for that engine's Block, checks the
// mapping's keys against the generic ones and the block's, decodes the
// mapping into the block and calls its Validate with a Scope that names
// the block's path. A key the engine does not have is an unknown key for
// that engine, reported like any other.
//
// Loading is strict: every key must be known (an unknown key is an error
// naming its full path, e.g. "source.passwrd", with the nearest known key
// or the list of keys there), ${VAR} and ${VAR:-default} are expanded from
// the environment inside scalar values only (so a secret can never inject
// YAML), and a *_file key reads a secret from a file (Scope.Secret).
// Validation fills defaults and reports every problem at once, each naming
// the key and the fix.
//
// Usage sketch (registry.New is the build's list of engines):
//
//	cfg, err := config.Load("/etc/hamal/shard1.yaml", registry.New())
//	if err != nil { ... } // "config /etc/hamal/shard1.yaml: source.server_id: required ..."
//	src := cfg.Source.Engine // the source engine's block, e.g. *mysql.SourceConfig
package config
