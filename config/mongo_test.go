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
	_, err = Parse([]byte(strings.Replace(mongoSinkExample, "source:\n  kind: mysql", "source:\n  kind: mongo", 1)))
	if err == nil || !strings.Contains(err.Error(), `"mongo" cannot be a source`) {
		t.Fatalf("mongo as a source: got %v", err)
	}
}
