// Package kafka is the Kafka engine's driver: the one value (Driver)
// through which Hamal configures, opens and checks a Kafka source
// (source/kafka, reading Hamal's envelopes) and a Kafka sink (sink/kafka,
// publishing them).
//
// Why a package of its own: the driver holds both sides, which live in
// packages that must not import each other; it sits above both and keeps
// the glue thin.
//
// What it owns:
//
//   - SourceConfig: the kafka block (brokers, topics, start, rescan), its
//     defaults and checks; Open; the check that a broker answers.
//   - SinkConfig: the kafka block (brokers, topic, site, ddl, ddl_topic,
//     auto_create_topics, linger, max_message_bytes, write_timeout), its
//     defaults and checks; Open; the check that a broker answers.
//
// Usage sketch:
//
//	snk, _ := engine.SinkOf(cfg) // a *kafka.SinkConfig for kind kafka
//	s, err := snk.Open(ctx, engine.SinkEnv(cfg, log))
package kafka
