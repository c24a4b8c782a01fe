package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hamal-replication/hamal/envelope"
	"github.com/hamal-replication/hamal/event"
	sinkkafka "github.com/hamal-replication/hamal/sink/kafka"
)

func main() {
	txns := flag.Int("txns", 20000, "transactions (one insert each) per run")
	workers := flag.Int("workers", 8, "concurrent Apply calls, as apply.workers")
	batch := flag.Int("batch", 64, "Txns per Apply, as apply.batch_txns")
	partitions := flag.Int("partitions", 6, "partitions of the topic")
	flag.Parse()
	if err := run(*txns, *workers, *batch, *partitions); err != nil {
		fmt.Fprintln(os.Stderr, "bench/kafka:", err)
		os.Exit(1)
	}
}

var table = &event.Table{Schema: "app", Name: "bench", Columns: []event.Column{
	{Name: "id", Type: gomysql.MYSQL_TYPE_LONG},
	{Name: "biu", Type: gomysql.MYSQL_TYPE_LONGLONG, Unsigned: true, Nullable: true},
	{Name: "de", Type: gomysql.MYSQL_TYPE_NEWDECIMAL, Meta: 30<<8 | 10, Nullable: true},
	{Name: "d", Type: gomysql.MYSQL_TYPE_DOUBLE, Nullable: true},
	{Name: "dtm", Type: gomysql.MYSQL_TYPE_DATETIME2, Meta: 6, Nullable: true},
	{Name: "ts", Type: gomysql.MYSQL_TYPE_TIMESTAMP2, Meta: 6, Nullable: true},
	{Name: "vc", Type: gomysql.MYSQL_TYPE_VARCHAR, Nullable: true},
	{Name: "bl", Type: gomysql.MYSQL_TYPE_BLOB, Binary: true, Nullable: true},
	{Name: "e", Type: gomysql.MYSQL_TYPE_ENUM, Members: []string{"a", "b", "c"}, Nullable: true},
	{Name: "st", Type: gomysql.MYSQL_TYPE_SET, Members: []string{"x", "y", "z"}, Nullable: true},
	{Name: "bt", Type: gomysql.MYSQL_TYPE_BIT, Meta: 1<<8 | 2, Nullable: true},
}, PrimaryKey: []int{0}}

func makeTxns(n int) []*event.Txn {
	out := make([]*event.Txn, n)
	for i := range out {
		row := []any{int32(i), uint64(i) * 7919, fmt.Sprintf("%d.%010d", i, i%97), float64(i) / 3,
			"2024-06-30 12:34:56.000001", "2024-06-30 12:34:56.123456", fmt.Sprintf("user-%d@example.com", i),
			[]byte(strings.Repeat("\x00\xff", 16)), int64(i%3 + 1), int64(i % 8), int64(i % 1024)}
		out[i] = &event.Txn{Seq: uint64(i + 1), Pos: event.Position(fmt.Sprintf("0-1-%d", i+1)), Kind: event.KindDML,
			CommitTime: time.Now(), Changes: []event.Change{{Op: event.OpInsert, Namespace: "app.bench", Table: table, After: row}}}
	}
	return out
}

// mode is a delivery mode of the sink.
type mode struct {
	name             string
	noLease, exactly bool
}

var modes = []mode{
	{name: "at-least-once, lease: false", noLease: true},
	{name: "at-least-once"}, // the default: the lease
	{name: "exactly-once", exactly: true},
}

func run(n, workers, batch, partitions int) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(partitions))
	if err != nil {
		return err
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	// Warm up (connections, JIT-free but page cache and allocator) so the
	// first measured run is not the slowest by accident.
	if _, _, err := publish(brokers, "hamal", modes[1], makeTxns(min(n, 2000)), workers, batch); err != nil {
		return err
	}
	fmt.Printf("load average before: %s", loadavg())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "format\tdelivery\ttxns\tseconds (median of 3)\tchanges/s (median)\tvs hamal\t")
	base := map[string]float64{}
	for _, m := range modes {
		for _, format := range []string{"hamal", "debezium", "canal", "maxwell"} {
			// The median of three runs: a shared machine's noise moves
			// single runs by tens of percent.
			var rates, times []float64
			for range 3 {
				rate, secs, err := publish(brokers, format, m, makeTxns(n), workers, batch)
				if err != nil {
					return fmt.Errorf("%s %s: %w", format, m.name, err)
				}
				rates, times = append(rates, rate), append(times, secs)
			}
			slices.Sort(rates)
			slices.Sort(times)
			rate, secs := rates[1], times[1]
			if format == "hamal" {
				base[m.name] = rate
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.0f\t%.0f%%\t\n", format, m.name, n, secs, rate, 100*rate/base[m.name])
		}
	}
	tw.Flush()
	fmt.Printf("at-least-once with the lease vs lease: false (hamal format): %.0f%%\n", 100*base[modes[1].name]/base[modes[0].name])
	fmt.Printf("exactly-once vs at-least-once with the lease (hamal format): %.0f%%\n", 100*base[modes[2].name]/base[modes[1].name])
	fmt.Printf("load average after: %s", loadavg())
	return nil
}

func publish(brokers []string, format string, m mode, txns []*event.Txn, workers, batch int) (float64, float64, error) {
	ctx := context.Background()
	channel := fmt.Sprintf("bench-%s-%v-%v-%d", format, m.noLease, m.exactly, time.Now().UnixNano())
	s, err := sinkkafka.Open(ctx, sinkkafka.Config{Brokers: brokers, Channel: channel, Site: "sz",
		Topic: channel + ".{db}.{table}", AutoCreateTopics: true, ExactlyOnce: m.exactly, NoLease: m.noLease,
		Format: envelope.FormatOptions{Name: format}})
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	batches := make(chan []*event.Txn)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := s.Apply(ctx, b); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < len(txns); i += batch {
		batches <- txns[i:min(i+batch, len(txns))]
	}
	close(batches)
	wg.Wait()
	secs := time.Since(start).Seconds()
	return float64(len(txns)) / secs, secs, firstErr
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown\n"
	}
	return string(b)
}
