package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	sinkkafka "github.com/hamal-replication/hamal/sink/kafka"
	"github.com/hamal-replication/hamal/test/kafkatest"
)

// publishTxns writes n source transactions of size changes each (keys
// spread over partitions and the two tables) through the Kafka sink.
func publishTxns(t *testing.T, brokers []string, format string, n, size int) {
	t.Helper()
	s, err := sinkkafka.Open(context.Background(), sinkkafka.Config{Brokers: brokers, Channel: "up", Site: "sz", AutoCreateTopics: true,
		Topic: "whole.{table}"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < n; i++ {
		txn := &event.Txn{Pos: event.Position(fmt.Sprintf("0-1-%d", i+1)), Kind: event.KindDML, CommitTime: time.UnixMilli(1700000000000)}
		for j := 0; j < size; j++ {
			tbl := kvTable
			if j%2 == 1 {
				tbl = kv2Table
			}
			txn.Changes = append(txn.Changes, event.Change{Op: event.OpInsert, Namespace: tbl.Namespace(), Table: tbl,
				After: []any{int32(i*size + j), int64(i)}})
		}
		if err := s.Apply(context.Background(), []*event.Txn{txn}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWholeTransactions: transactions of 5 changes spread over 2 topics ×
// 3 partitions come back as one Txn each, their changes in transaction
// order, and a Txn's position never passes a message of a transaction
// not yet returned (so resuming at any returned position loses nothing).
func TestWholeTransactions(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.AutoCreate(3)...)
	const n, size = 40, 5
	publishTxns(t, brokers, "", n, size)
	src, err := Open(context.Background(), Config{Brokers: brokers, Topics: []string{"whole.*"}, Transactions: TransactionsWhole}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[int64]bool{}
	var positions []event.Position
	for len(seen) < n {
		txn, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if txn.Kind != event.KindDML {
			continue
		}
		if len(txn.Changes) != size {
			t.Fatalf("a Txn of %d changes, want the whole transaction of %d", len(txn.Changes), size)
		}
		i := txn.Changes[0].After[1].(int64)
		for j, c := range txn.Changes {
			if c.After[1].(int64) != i || c.After[0].(int64) != i*size+int64(j) {
				t.Fatalf("transaction %d change %d is %v: mixed or out of order", i, j, c.After)
			}
		}
		if seen[i] {
			t.Fatalf("transaction %d returned twice", i)
		}
		seen[i] = true
		positions = append(positions, txn.Pos)
	}
	// Resuming at each returned position reads again only transactions
	// not returned before it, and all of them: count what a reader from
	// the first returned position finds whole.
	again, err := Open(context.Background(), Config{Brokers: brokers, Topics: []string{"whole.*"}, Transactions: TransactionsWhole}, positions[0])
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got := 0
	for got < n-1 {
		txn, err := again.Next(ctx)
		if err != nil {
			t.Fatalf("resumed after %d transactions: %v", got, err)
		}
		if txn.Kind == event.KindDML {
			if len(txn.Changes) != size {
				t.Fatalf("resumed: a Txn of %d changes", len(txn.Changes))
			}
			got++
		}
	}
}

// TestWholeTransactionThatCannotComplete: a transaction whose other
// messages are in a topic the source does not read fills the bounded
// buffer and stops the source with an error naming it and the fixes.
func TestWholeTransactionThatCannotComplete(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.AutoCreate(1)...)
	publishTxns(t, brokers, "", 10, 2) // changes alternate whole.kv and whole.kv2
	src, err := Open(context.Background(), Config{Brokers: brokers, Topics: []string{"whole.kv"}, Transactions: TransactionsWhole, TransactionBuffer: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		txn, err := src.Next(ctx)
		if err != nil {
			if !errors.Is(err, ErrTransactionIncomplete) {
				t.Fatalf("got %v, want ErrTransactionIncomplete", err)
			}
			for _, w := range []string{"transaction 0-1-1", "1 of unknown messages", "source.kafka.transaction_buffer", "transactions: each"} {
				if !contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			return
		}
		if txn.Kind == event.KindDML {
			t.Fatalf("applied part of a transaction: %v", txn.Changes)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
