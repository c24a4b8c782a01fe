// Command kafka measures the Kafka sink's publish throughput into kfake
// (franz-go's broker, in process) for each format and delivery mode
// (at-least-once with lease: false, at-least-once with the lease, the
// default, and exactly-once), in one run, and prints the machine's load average so
// figures from a busy machine can be told apart.
//
//	go run ./bench/kafka -txns 20000 -workers 8 -batch 64
//
// Each Txn is one insert into a table with the workload's column kinds
// (integers, DECIMAL, DOUBLE, DATETIME(6), TIMESTAMP(6), VARCHAR, BLOB,
// ENUM, SET, BIT). Applies run from -workers goroutines, as the
// pipeline's workers call a sink; the lease (so exactly-once too)
// serialises them into one transaction at a time, which is its cost.
package main
