package mongo

import (
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/engine/mysql"
)

var registry = engine.NewRegistry(Driver, mysql.Driver)

const sinkExample = `name: sz-to-mongo
source:
  kind: mysql
  addr: 127.0.0.1:3306
  user: repl
  server_id: 1001
sink:
  kind: mongo
  mongo:
    uri: mongodb://hamal:s3cret@127.0.0.1:27017/?replicaSet=rs0
checkpoint:
  dir: ./var/m
`

func TestSink(t *testing.T) {
	cfg, err := registry.Parse([]byte(sinkExample))
	if err != nil {
		t.Fatal(err)
	}
	snk := cfg.Sink.Engine.(*SinkConfig)
	r := cfg.Redacted()
	if strings.Contains(r.Sink.Engine.(*SinkConfig).Mongo.URI, "s3cret") || !strings.Contains(snk.Mongo.URI, "s3cret") {
		t.Fatalf("redacted %q, original %q", r.Sink.Engine.(*SinkConfig).Mongo.URI, snk.Mongo.URI)
	}
	if strings.Contains(snk.Endpoint(), "s3cret") {
		t.Errorf("Endpoint() shows the password: %s", snk.Endpoint())
	}
	for name, tc := range map[string][2]string{
		"no uri":     {"    uri: mongodb://hamal:s3cret@127.0.0.1:27017/?replicaSet=rs0\n", "sink.mongo.uri: required"},
		"bad scheme": {"mongodb://hamal", "sink.mongo.uri: must start with mongodb://"},
		"addr":       {"  kind: mongo\n", "sink.addr: unknown key for a mongo sink"},
	} {
		t.Run(name, func(t *testing.T) {
			to := ""
			switch name {
			case "bad scheme":
				to = "http://hamal"
			case "addr":
				to = "  kind: mongo\n  addr: 127.0.0.1:27017\n"
			}
			_, err := registry.Parse([]byte(strings.Replace(sinkExample, tc[0], to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc[1]) {
				t.Fatalf("got %v, want %q", err, tc[1])
			}
		})
	}
}

const sourceExample = `name: mongo-to-mongo
source:
  kind: mongo
  mongo:
    uri: mongodb://hamal:s3cret@127.0.0.1:27017/?replicaSet=rs0
    database: app
%ssink:
  kind: mongo
  mongo:
    uri: mongodb://127.0.0.1:27018/?replicaSet=rs1
checkpoint:
  dir: ./var/m
`

func TestSource(t *testing.T) {
	cfg, err := registry.Parse([]byte(strings.Replace(sourceExample, "%s", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	src := cfg.Source.Engine.(*SourceConfig)
	if m := src.Mongo; m.Database != "app" || m.Start != "current" || m.Collection != "" || src.StartsAt() != "source.mongo.start=current" {
		t.Fatalf("parsed %+v", m)
	}
	if r := cfg.Redacted(); strings.Contains(r.Source.Engine.(*SourceConfig).Mongo.URI, "s3cret") || !strings.Contains(src.Mongo.URI, "s3cret") {
		t.Fatalf("redacted %q", r.Source.Engine.(*SourceConfig).Mongo.URI)
	}
	cfg, err = registry.Parse([]byte(strings.Replace(sourceExample, "%s", "    start: \"1700000000.3\"\n    collection: users\n    pre_images: true\n    initial_sync: true\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Source.Engine.(*SourceConfig).Mongo; m.Start != "1700000000.3" || m.Collection != "users" || !m.PreImages || !m.InitialSync {
		t.Fatalf("parsed %+v", m)
	}
	for extra, want := range map[string]string{
		"    start: yesterday\n":                  `source.mongo.start: "yesterday" is neither current nor a cluster time`,
		"    resume_after: x\n":                   "source.mongo.resume_after: unknown key",
		"    database: \"\"\n    collection: c\n": "source.mongo.collection: needs source.mongo.database",
		"  addr: 127.0.0.1:27017\n":               "source.addr: unknown key for a mongo source",
	} {
		text := strings.Replace(sourceExample, "%s", extra, 1)
		if strings.Contains(extra, `database: ""`) {
			text = strings.Replace(sourceExample, "    database: app\n%s", extra, 1)
		}
		if _, err := registry.Parse([]byte(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", extra, err, want)
		}
	}
}
