// Package kafkalink is how Hamal reaches a Kafka cluster beyond the
// broker list: TLS (the tls block, through tlslink: verified, never
// falling back to clear text, a handshake that cannot hang) and SASL
// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512): as franz-go client options
// (Opts: the Kafka sink and the Kafka source's consumer, Ping: hamal
// check) and as segmentio/kafka-go's Transport (the Kafka source's
// metadata and offsets), one configuration for both.
//
// Contracts: PLAIN sends the password as it is, so Link refuses it
// without TLS (Validate); Explain names a SASL or TLS failure and marks
// it fatal (ErrSASL, tlslink.ErrTLS).
//
//	opts, err := link.Opts()
//	client, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
package kafkalink
