package config

import (
	"regexp"
	"strings"
)

func init() {
	register("mongo", Kind{Source: validateMongoSource, Sink: validateMongoSink})
}

// MongoSource holds the keys of source.kind mongo, under source.mongo.
type MongoSource struct {
	// URI is a MongoDB connection string naming a replica set or a
	// sharded cluster (change streams need one).
	URI string `yaml:"uri"`
	// Database and Collection set the change stream's scope: both empty,
	// the whole deployment; Database alone, one database; both, one
	// collection.
	Database   string `yaml:"database"`
	Collection string `yaml:"collection"`
	// Start is where a channel without a checkpoint begins: "current"
	// (default) or a cluster time "<seconds>.<increment>".
	Start string `yaml:"start"`
	// PreImages asks for fullDocumentBeforeChange (whenAvailable); the
	// collections need changeStreamPreAndPostImages enabled.
	PreImages bool `yaml:"pre_images"`
	// InitialSync copies the collections in scope before streaming, on a
	// channel's first start.
	InitialSync bool `yaml:"initial_sync"`
}

var clusterTimeRE = regexp.MustCompile(`^[0-9]{1,10}\.[0-9]{1,10}$`)

func validateMongoSource(c *Config, bad func(string, ...any)) {
	if c.Source.Addr != "" || c.Source.User != "" || c.Source.ServerID != 0 || c.Source.Flavor != "" {
		bad("source.addr/source.user/source.server_id/source.flavor: not used by kind mongo; put the address and credentials in source.mongo.uri")
	}
	if len(c.Source.Tables) > 0 || len(c.Source.Exclude) > 0 {
		bad("source.tables / source.exclude: not used by kind mongo; set the scope with source.mongo.database and source.mongo.collection")
	}
	if c.Source.Start != "" {
		bad("source.start: not used by kind mongo; use source.mongo.start (current or <seconds>.<increment>)")
	}
	m := c.Source.Mongo
	if m == nil || m.URI == "" {
		bad("source.mongo.uri: required for kind mongo, e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0")
		return
	}
	if !strings.HasPrefix(m.URI, "mongodb://") && !strings.HasPrefix(m.URI, "mongodb+srv://") {
		bad("source.mongo.uri: must start with mongodb:// or mongodb+srv://")
	}
	if m.Collection != "" && m.Database == "" {
		bad("source.mongo.collection: needs source.mongo.database (the collection's database)")
	}
	switch {
	case m.Start == "":
		m.Start = "current"
	case m.Start == "current" || clusterTimeRE.MatchString(m.Start):
	default:
		bad("source.mongo.start: %q is neither current nor a cluster time <seconds>.<increment> (e.g. 1700000000.1)", m.Start)
	}
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
