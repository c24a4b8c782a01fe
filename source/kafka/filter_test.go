package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	sinkkafka "github.com/hamal-replication/hamal/sink/kafka"
	"github.com/hamal-replication/hamal/test/kafkatest"
)

// TestTablesBoundWhatEnvelopesWrite: whoever can produce to the topics
// names the tables; the source applies only those matching source.tables
// and not source.exclude, and never one of Hamal's own schema. The others
// become heartbeats, so the offsets still move past them.
func TestTablesBoundWhatEnvelopesWrite(t *testing.T) {
	brokers := kafkatest.Start(t, kafkatest.AutoCreate(1)...)
	tables := []*event.Table{
		{Schema: "app", Name: "t", Columns: kvTable.Columns, PrimaryKey: []int{0}},
		{Schema: "app", Name: "secret", Columns: kvTable.Columns, PrimaryKey: []int{0}},
		{Schema: "bank", Name: "ledger", Columns: kvTable.Columns, PrimaryKey: []int{0}},
		{Schema: "hamal", Name: "conflicts", Columns: kvTable.Columns, PrimaryKey: []int{0}},
	}
	s, err := sinkkafka.Open(context.Background(), sinkkafka.Config{Brokers: brokers, Channel: "up", Topic: "in.all", AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	var batch []*event.Txn
	for i, tbl := range tables {
		batch = append(batch, &event.Txn{Pos: event.Position(fmt.Sprintf("0-1-%d", i+1)), Kind: event.KindDML, CommitTime: time.UnixMilli(1700000000000),
			Changes: []event.Change{{Op: event.OpInsert, Namespace: tbl.Namespace(), Table: tbl, After: []any{int32(i), int64(i)}}}})
	}
	if err := s.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	s.Close()

	src := openSource(t, brokers, nil, func(c *Config) {
		c.Topics, c.Tables, c.Exclude = []string{"in.*"}, []string{"app.*", "hamal.*"}, []string{"app.secret"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var kinds []event.Kind
	var applied []string
	for len(kinds) < len(tables) {
		txn, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, txn.Kind)
		if txn.Kind == event.KindDML {
			applied = append(applied, txn.Changes[0].Namespace)
		}
	}
	if len(applied) != 1 || applied[0] != "app.t" {
		t.Errorf("applied %v (kinds %v), want only app.t", applied, kinds)
	}
	if src.refused != 1 {
		t.Errorf("refused %d envelopes of hamal.*, want 1 (even though source.tables names hamal.*)", src.refused)
	}
	// The skipped envelopes' offsets are passed too: a resume does not
	// read them again.
	if got := src.Position().String(); !strings.HasSuffix(got, " in.all/0=4") {
		t.Errorf("position %q, want in.all/0=4", got)
	}
}
