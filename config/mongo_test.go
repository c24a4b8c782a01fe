package config

import (
	"strings"
	"testing"
)

const mongoSinkExample = `name: sz-to-mongo
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

func TestMongoSink(t *testing.T) {
	cfg, err := Parse([]byte(mongoSinkExample))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Redacted()
	if strings.Contains(r.Sink.Mongo.URI, "s3cret") || !strings.Contains(cfg.Sink.Mongo.URI, "s3cret") {
		t.Fatalf("redacted %q, original %q", r.Sink.Mongo.URI, cfg.Sink.Mongo.URI)
	}
	for name, tc := range map[string][2]string{
		"no uri":     {"    uri: mongodb://hamal:s3cret@127.0.0.1:27017/?replicaSet=rs0\n", "sink.mongo.uri: required"},
		"bad scheme": {"mongodb://hamal", "must start with mongodb://"},
	} {
		t.Run(name, func(t *testing.T) {
			to := ""
			if name == "bad scheme" {
				to = "http://hamal"
			}
			_, err := Parse([]byte(strings.Replace(mongoSinkExample, tc[0], to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc[1]) {
				t.Fatalf("got %v, want %q", err, tc[1])
			}
		})
	}
}

const mongoSourceExample = `name: mongo-to-mongo
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

func TestMongoSource(t *testing.T) {
	cfg, err := Parse([]byte(strings.Replace(mongoSourceExample, "%s", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Source.Mongo; m.Database != "app" || m.Start != "current" || m.Collection != "" {
		t.Fatalf("parsed %+v", m)
	}
	if r := cfg.Redacted(); strings.Contains(r.Source.Mongo.URI, "s3cret") || !strings.Contains(cfg.Source.Mongo.URI, "s3cret") {
		t.Fatalf("redacted %q", r.Source.Mongo.URI)
	}
	cfg, err = Parse([]byte(strings.Replace(mongoSourceExample, "%s", "    start: \"1700000000.3\"\n    collection: users\n    pre_images: true\n    initial_sync: true\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Source.Mongo; m.Start != "1700000000.3" || m.Collection != "users" || !m.PreImages || !m.InitialSync {
		t.Fatalf("parsed %+v", m)
	}
	for extra, want := range map[string]string{
		"    start: yesterday\n":                  `source.mongo.start: "yesterday" is neither current nor a cluster time`,
		"    resume_after: x\n":                   "source.mongo.resume_after: unknown key",
		"    database: \"\"\n    collection: c\n": "source.mongo.collection: needs source.mongo.database",
		"  addr: 127.0.0.1:27017\n":               "not used by kind mongo",
	} {
		text := strings.Replace(mongoSourceExample, "%s", extra, 1)
		if strings.Contains(extra, `database: ""`) {
			text = strings.Replace(mongoSourceExample, "    database: app\n%s", extra, 1)
		}
		if _, err := Parse([]byte(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", extra, err, want)
		}
	}
}
