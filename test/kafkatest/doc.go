// Package kafkatest starts an in-process Kafka cluster (franz-go's kfake,
// which speaks the real wire protocol) on loopback for Hamal's Kafka tests,
// and reads topics back for assertions.
//
// Usage sketch:
//
//	brokers := kafkatest.Start(t, kafkatest.Topics(3, "hamal.app.users"))
//	msgs := kafkatest.ReadAll(t, brokers, "hamal.app.users")
package kafkatest
