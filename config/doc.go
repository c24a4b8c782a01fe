// Package config loads a channel's YAML configuration.
//
// Loading is strict: every key must be known (an unknown key is an error
// naming its full path, e.g. "source.passwrd"), ${VAR} and ${VAR:-default}
// are expanded from the environment inside scalar values only (so a secret
// can never inject YAML), and a *_file key reads a secret from a file.
// Validate fills defaults and reports every problem at once, each naming the
// key and the fix.
//
// Usage sketch:
//
//	cfg, err := config.Load("/etc/hamal/shard1.yaml")
//	if err != nil { ... } // "config /etc/hamal/shard1.yaml: source.server_id: required ..."
package config
