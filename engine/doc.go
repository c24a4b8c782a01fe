// Package engine is the contract between Hamal's core and its engines:
// what a driver (one per engine: mysql, redis, mongo, kafka) provides and
// the registry that resolves source.kind and sink.kind to it.
//
// A Driver is a name and, per side, a config block (SourceConfig,
// SinkConfig): the engine's keys in the source or sink mapping. The block
// is decoded and validated by package config, which knows no engine and
// asks the Registry (as config.Kinds) for the block of a kind. After
// that the block is the engine's whole configuration: Open builds the
// source or sink, Check runs its preflight, Endpoint and StartsAt describe
// it, and a source block may run a Sidecar. The model is Prometheus'
// service discovery: its Config builds its Discoverer.
//
// Contracts:
//
//   - Validate runs once, before any other method, and fills the block's
//     defaults; Open, Check, Endpoint and StartsAt do not change the
//     block, and may be called from any goroutine (Open again after every
//     transient error).
//   - Open returns a value the caller owns and closes. Env carries what a
//     block needs from its channel (name, side's site, workers, logger).
//   - Check changes nothing on the servers and takes no lease, so it runs
//     next to a running channel; it reports to a Report, which carries the
//     source's tables to the sink's check.
//
// Usage sketch (what `hamal run` does):
//
//	cfg, err := registry.New().Load(path)
//	src, _ := engine.SourceOf(cfg)
//	s, err := src.Open(ctx, engine.SourceEnv(cfg, log), checkpoint)
package engine
