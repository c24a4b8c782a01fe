package engine_test

import (
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/engine/kafka"
	"github.com/hamal-replication/hamal/engine/mysql"
)

// TestRegistry: a kind resolves to its driver's block on the sides it
// plays; a registry holds a name once.
func TestRegistry(t *testing.T) {
	sourceOnly := engine.Driver{Name: "kafka", NewSource: kafka.Driver.NewSource}
	r := engine.NewRegistry(mysql.Driver, sourceOnly)
	if b, err := r.SourceBlock("mysql"); err != nil {
		t.Fatal(err)
	} else if _, ok := b.(*mysql.SourceConfig); !ok {
		t.Errorf("mysql source block is %T", b)
	}
	if b, err := r.SinkBlock("mysql"); err != nil {
		t.Fatal(err)
	} else if _, ok := b.(*mysql.SinkConfig); !ok {
		t.Errorf("mysql sink block is %T", b)
	}
	if _, err := r.SinkBlock("kafka"); err == nil || err.Error() != `"kafka" cannot be a sink; supported: mysql` {
		t.Errorf("a source-only engine as sink: %v", err)
	}
	// Each call gives a new block: two configs never share one.
	a, _ := r.SourceBlock("mysql")
	b, _ := r.SourceBlock("mysql")
	if a == b {
		t.Error("SourceBlock returned the same block twice")
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), `"mysql" registered twice`) {
			t.Errorf("duplicate driver: recovered %v", p)
		}
	}()
	engine.NewRegistry(mysql.Driver, mysql.Driver)
}

// TestSourceOf: a config decoded by the registry yields its blocks as
// the engine's configs; one built by hand without blocks is refused.
func TestSourceOf(t *testing.T) {
	cfg, err := engine.NewRegistry(mysql.Driver).Parse([]byte("name: x\nsource: {kind: mysql, addr: 'h:1', user: u, server_id: 1}\nsink: {kind: mysql, addr: 'h:2', user: u}\ncheckpoint: {dir: d}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if src, err := engine.SourceOf(cfg); err != nil || src.Endpoint() != "h:1" {
		t.Errorf("SourceOf: %v, %v", src, err)
	}
	if snk, err := engine.SinkOf(cfg); err != nil || snk.Endpoint() != "h:2" {
		t.Errorf("SinkOf: %v, %v", snk, err)
	}
	if env := engine.SinkEnv(cfg, nil); env.Channel != "x" || env.Workers != config.DefaultWorkers {
		t.Errorf("SinkEnv: %+v", env)
	}
	if _, err := engine.SourceOf(&config.Config{Source: config.Source{Kind: "mysql"}}); err == nil {
		t.Error("SourceOf a config without a block: no error")
	}
}
