package failover

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/engine/registry"
)

// TestBuildRefusesOtherEngines: the report reads a MySQL binlog and
// compares MySQL rows; any other engine is refused before anything is
// opened.
func TestBuildRefusesOtherEngines(t *testing.T) {
	cfg, err := registry.New().Parse([]byte(`name: k
source: {kind: mysql, addr: 'h:1', user: u, server_id: 1}
sink: {kind: kafka, kafka: {brokers: ['h:9092']}}
checkpoint: {dir: ` + t.TempDir() + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), cfg, nil); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "sink.kind kafka") {
		t.Fatalf("Build with a kafka sink: %v", err)
	}
}

func TestPrint(t *testing.T) {
	rep := &Report{Channel: "c", Source: "s:1", Target: "t:1", From: "0-1-5", To: "0-1-9", Transactions: 3, AlreadyApplied: 1,
		Tables: []Table{{Table: "app.t", Rows: []Row{{Key: "id=7", Op: "insert", State: "missing", Source: map[string]any{"id": 7}}}}},
		DDL:    []Change{{Statement: "ALTER TABLE app.t ADD c INT", Position: "0-1-8"}}}
	var b bytes.Buffer
	rep.Print(&b)
	for _, want := range []string{"channel c: s:1 → t:1", "from the checkpoint 0-1-5 to 0-1-9: 3 transactions", "1 row(s) the target lacks; 1 row(s) already equal",
		"DDL not applied: ALTER TABLE app.t ADD c INT (at 0-1-8)", "app.t  id=7"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
