package mongo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/sink"
	sinkmongo "github.com/hamal-replication/hamal/sink/mongo"
	"github.com/hamal-replication/hamal/source"
	srcmongo "github.com/hamal-replication/hamal/source/mongo"
	"github.com/hamal-replication/hamal/tlslink"
)

// Driver is the MongoDB engine (kind mongo) on both sides.
var Driver = engine.Driver{
	Name:      "mongo",
	NewSource: func() engine.SourceConfig { return &SourceConfig{} },
	NewSink:   func() engine.SinkConfig { return &SinkConfig{} },
}

// SourceConfig is the source block of kind mongo.
type SourceConfig struct {
	Mongo *Source `yaml:"mongo"`
	// TLS encrypts every connection to the deployment; on means
	// required. TLS options in the connection string are refused with
	// it (set TLS in one place), and insecure ones always.
	TLS config.TLS `yaml:"tls"`
}

// Source holds the keys under source.mongo.
type Source struct {
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

var (
	_ engine.SourceConfig = (*SourceConfig)(nil)
	_ engine.SinkConfig   = (*SinkConfig)(nil)
	_ config.Redactor     = (*SourceConfig)(nil)
	_ config.Redactor     = (*SinkConfig)(nil)
)

var clusterTimeRE = regexp.MustCompile(`^[0-9]{1,10}\.[0-9]{1,10}$`)

// Validate implements config.Block.
func (c *SourceConfig) Validate(s *config.Scope) {
	m := c.Mongo
	if m == nil || m.URI == "" {
		s.Bad("%s: required for kind mongo, e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0", s.Sub("mongo").Key("uri"))
		return
	}
	checkTLS(s, m.URI, &c.TLS)
	s = s.Sub("mongo")
	checkURI(s, m.URI)
	if m.Collection != "" && m.Database == "" {
		s.Bad("%s: needs %s (the collection's database)", s.Key("collection"), s.Key("database"))
	}
	switch {
	case m.Start == "":
		m.Start = "current"
	case m.Start == "current" || clusterTimeRE.MatchString(m.Start):
	default:
		s.Bad("%s: %q is neither current nor a cluster time <seconds>.<increment> (e.g. 1700000000.1)", s.Key("start"), m.Start)
	}
}

func checkURI(s *config.Scope, uri string) {
	if !strings.HasPrefix(uri, "mongodb://") && !strings.HasPrefix(uri, "mongodb+srv://") {
		s.Bad("%s: must start with mongodb:// or mongodb+srv://", s.Key("uri"))
	}
}

// uriTLSOptions are the connection string options that configure TLS;
// insecure ones turn verification off.
var (
	uriTLSOptions = []string{"tls", "ssl", "tlscafile", "tlscertificatekeyfile", "tlscertificatekeyfilepassword",
		"tlsinsecure", "tlsallowinvalidcertificates", "tlsallowinvalidhostnames", "tlsdisableocspendpointcheck"}
	uriInsecure = map[string]bool{"tlsinsecure": true, "tlsallowinvalidcertificates": true, "tlsallowinvalidhostnames": true}
)

// checkTLS validates the block's tls keys (s is the side's scope) and
// the connection string's TLS options against them: TLS is set in one
// place, and never without verification behind the config's back.
func checkTLS(s *config.Scope, uri string, t *config.TLS) {
	s.TLS("tls", t)
	q := ""
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		q = uri[i+1:]
	}
	values, _ := url.ParseQuery(q)
	for name := range values {
		opt := strings.ToLower(name)
		if !slices.Contains(uriTLSOptions, opt) {
			continue
		}
		switch {
		case uriInsecure[opt]:
			s.Bad("%s: the connection string's %s turns certificate verification off unseen; remove it, and set %s.skip_verify if you must (it is logged and shown by hamal check)", s.Sub("mongo").Key("uri"), name, s.Key("tls"))
		case t.Enabled:
			s.Bad("%s: the connection string sets %s while %s is on; set TLS in one place (remove %s from the uri)", s.Sub("mongo").Key("uri"), name, s.Key("tls"), name)
		}
	}
}

// tlsConfig is the block's crypto/tls configuration, nil when off. The
// server name is left to the driver (each host's own) unless
// server_name is set.
func tlsConfig(side string, t config.TLS) (*tls.Config, error) {
	cfg, err := t.Config("")
	if err != nil {
		return nil, fmt.Errorf("%s.tls: %w", side, err)
	}
	return cfg, nil
}

// linkError names the real cause of err when it is a TLS failure: the
// driver reports a failed handshake as a server selection timeout whose
// servers hold the cause. Such an error is fatal (tlslink.ErrTLS); any
// other is returned as it is.
func linkError(key string, t config.TLS, err error) error {
	if err == nil || !t.Enabled {
		return err
	}
	var sse topology.ServerSelectionError
	if !errors.As(err, &sse) {
		return tlslink.Explain(key, "", err)
	}
	for _, srv := range sse.Desc.Servers {
		if srv.LastError == nil {
			continue
		}
		if e := tlslink.Explain(key, srv.Addr.String(), srv.LastError); e != srv.LastError {
			return e
		}
		if errors.Is(srv.LastError, io.EOF) || errors.Is(srv.LastError, syscall.ECONNRESET) {
			return &tlslink.Error{Addr: srv.Addr.String(), Cause: "the server closed the connection during the TLS handshake: it may not take TLS on this port",
				Fix: "enable TLS on the server, or set " + key + ".enabled: false if the link may be plain", Err: srv.LastError}
		}
	}
	return err
}

// Redacted implements config.Redactor.
func (c *SourceConfig) Redacted() config.Block {
	r := *c
	if c.Mongo != nil {
		m := *c.Mongo
		m.URI = RedactURI(m.URI)
		r.Mongo = &m
	}
	return &r
}

// ReaderConfig is the block as source/mongo's Config, TLS included.
func (c *SourceConfig) ReaderConfig(env engine.Env) (srcmongo.Config, error) {
	m := c.Mongo
	tlsConf, err := tlsConfig("source", c.TLS)
	if err != nil {
		return srcmongo.Config{}, err
	}
	return srcmongo.Config{URI: m.URI, TLS: tlsConf, Database: m.Database, Collection: m.Collection, Start: m.Start,
		PreImages: m.PreImages, InitialSync: m.InitialSync, Site: env.Site, Logger: env.Logger}, nil
}

// Open implements engine.SourceConfig.
func (c *SourceConfig) Open(ctx context.Context, env engine.Env, resume event.Position) (source.Source, error) {
	rc, err := c.ReaderConfig(env)
	if err != nil {
		return nil, err
	}
	s, err := srcmongo.Open(ctx, rc, resume)
	return s, linkError("source.tls", c.TLS, err)
}

// Check implements engine.SourceConfig.
func (c *SourceConfig) Check(ctx context.Context, env engine.Env, r *engine.Report) {
	rc, err := c.ReaderConfig(env)
	if err != nil {
		r.Fail(err.Error(), "fix source.tls")
		return
	}
	kind, err := srcmongo.Check(ctx, rc)
	if err != nil {
		fix := "check source.mongo.uri: it must name a replica set or mongos, and the user needs the changeStream and find actions"
		var te *tlslink.Error
		if err = linkError("source.tls", c.TLS, err); errors.As(err, &te) {
			fix = te.Fix
		}
		r.Fail(fmt.Sprintf("source %v", err), fix)
		return
	}
	r.OK("source MongoDB is a %s; a change stream opens on the configured scope", kind)
	if env.Site != "" && c.Mongo.Database != "" {
		// Sinks write their origin markers into hamal.origin_marker, which
		// a database- or collection-scoped change stream never sees.
		r.Fail("source.site is set (loop guard on) but source.mongo.database narrows the change stream, so it cannot see the origin markers in hamal.origin_marker: transactions another channel applied to this deployment would come back as local writes",
			"leave source.mongo.database and source.mongo.collection unset (watch the whole deployment), or leave source.site unset if no channel writes into this deployment")
	}
}

// StartsAt implements engine.SourceConfig.
func (c *SourceConfig) StartsAt() string { return "source.mongo.start=" + c.Mongo.Start }

// Endpoint implements engine.SourceConfig.
func (c *SourceConfig) Endpoint() string { return RedactURI(c.Mongo.URI) }

// SinkConfig is the sink block of kind mongo.
type SinkConfig struct {
	Mongo *Sink `yaml:"mongo"`
	// TLS encrypts every connection to the target, as the source's.
	TLS config.TLS `yaml:"tls"`
}

// Sink holds the keys under sink.mongo.
type Sink struct {
	// URI is a MongoDB connection string, e.g. mongodb://hamal:${PW}@db1:27017/?replicaSet=rs0.
	URI string `yaml:"uri"`
}

// Validate implements config.Block.
func (c *SinkConfig) Validate(s *config.Scope) {
	if c.Mongo == nil || c.Mongo.URI == "" {
		s.Bad("%s: required for kind mongo, e.g. mongodb://127.0.0.1:27017", s.Sub("mongo").Key("uri"))
		return
	}
	checkTLS(s, c.Mongo.URI, &c.TLS)
	checkURI(s.Sub("mongo"), c.Mongo.URI)
}

// Redacted implements config.Redactor.
func (c *SinkConfig) Redacted() config.Block {
	r := *c
	if c.Mongo != nil {
		r.Mongo = &Sink{URI: RedactURI(c.Mongo.URI)}
	}
	return &r
}

// ApplierConfig is the block as sink/mongo's Config, TLS included.
func (c *SinkConfig) ApplierConfig(env engine.Env) (sinkmongo.Config, error) {
	tlsConf, err := tlsConfig("sink", c.TLS)
	if err != nil {
		return sinkmongo.Config{}, err
	}
	return sinkmongo.Config{URI: c.Mongo.URI, TLS: tlsConf, Site: env.Site, Channel: env.Channel, Logger: env.Logger}, nil
}

// Open implements engine.SinkConfig.
func (c *SinkConfig) Open(ctx context.Context, env engine.Env) (sink.Sink, error) {
	sc, err := c.ApplierConfig(env)
	if err != nil {
		return nil, err
	}
	s, err := sinkmongo.Open(ctx, sc)
	if err != nil {
		return nil, linkError("sink.tls", c.TLS, err)
	}
	return s, nil
}

// Check implements engine.SinkConfig.
func (c *SinkConfig) Check(ctx context.Context, env engine.Env, r *engine.Report) {
	sc, err := c.ApplierConfig(env)
	if err != nil {
		r.Fail(err.Error(), "fix sink.tls")
		return
	}
	sc.SkipLease = true // next to a running channel, which holds it
	s, err := sinkmongo.Open(ctx, sc)
	if err != nil {
		fix := "check sink.mongo.uri and that the server listens there"
		var te *tlslink.Error
		if err = linkError("sink.tls", c.TLS, err); errors.As(err, &te) {
			fix = te.Fix
		}
		r.Fail(fmt.Sprintf("sink %v", err), fix)
		return
	}
	defer s.Close()
	switch {
	case env.Site == "":
		r.OK("sink MongoDB reachable")
	case s.Transactions():
		r.OK("sink MongoDB reachable; a replica set, so batches are applied in transactions with the origin marker")
	default:
		r.Fail("sink.site is set but the sink MongoDB is not a replica set: batches cannot carry the origin marker, so writes this channel applies would be replicated back as local ones",
			"make the target a replica set (a one-member set will do: mongod --replSet rs0, then rs.initiate()), or leave sink.site unset if no channel reads this target")
	}
}

// Endpoint implements engine.SinkConfig.
func (c *SinkConfig) Endpoint() string { return RedactURI(c.Mongo.URI) }

// RedactURI replaces the password of scheme://user:password@host… with ***.
func RedactURI(uri string) string {
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
