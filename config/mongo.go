package config

import "strings"

func init() {
	register("mongo", Kind{Sink: validateMongoSink})
}

// MongoSink holds the keys of sink.kind mongo, under sink.mongo.
type MongoSink struct {
	// URI is a MongoDB connection string, e.g. mongodb://hamal:${PW}@db1:27017/?replicaSet=rs0.
	URI string `yaml:"uri"`
}

func validateMongoSink(c *Config, bad func(string, ...any)) {
	if c.Sink.Addr != "" || c.Sink.User != "" {
		bad("sink.addr/sink.user: not used by kind mongo; put them in sink.mongo.uri")
	}
	m := c.Sink.Mongo
	if m == nil || m.URI == "" {
		bad("sink.mongo.uri: required for kind mongo, e.g. mongodb://127.0.0.1:27017")
		return
	}
	if !strings.HasPrefix(m.URI, "mongodb://") && !strings.HasPrefix(m.URI, "mongodb+srv://") {
		bad("sink.mongo.uri: must start with mongodb:// or mongodb+srv://")
	}
}

// redactURI replaces the password of scheme://user:password@host… with ***.
func redactURI(uri string) string {
	scheme := strings.Index(uri, "://")
	at := strings.LastIndexByte(uri, '@')
	if scheme < 0 || at < scheme {
		return uri
	}
	creds := uri[scheme+3 : at]
	if colon := strings.IndexByte(creds, ':'); colon >= 0 {
		return uri[:scheme+3] + creds[:colon] + ":***" + uri[at:]
	}
	return uri
}
