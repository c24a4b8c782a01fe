package mongo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	gomongo "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/tlslink"
)

// TestTLSKeys: tls is the block's (source.tls, sink.tls), and the
// connection string may not set TLS as well, nor turn verification off.
func TestTLSKeys(t *testing.T) {
	ca := harness.TLSCerts(t, "mongo-keys").CA
	for _, tc := range []struct{ name, uri, tls, err string }{
		{"block", "mongodb://h:27017/", "{ca: " + ca + "}", ""},
		{"uri only", "mongodb://h:27017/?tls=true", "", ""},
		{"both", "mongodb://h:27017/?tls=true", "{ca: " + ca + "}", "sink.mongo.uri: the connection string sets tls while sink.tls is on"},
		{"insecure uri", "mongodb://h:27017/?tls=true&tlsInsecure=true", "", "turns certificate verification off unseen"},
		{"allow invalid hostnames", "mongodb://h:27017/?ssl=true&tlsAllowInvalidHostnames=true", "", "set sink.tls.skip_verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(sinkExample, "mongodb://hamal:s3cret@127.0.0.1:27017/?replicaSet=rs0", tc.uri, 1)
			if tc.tls != "" {
				text = strings.Replace(text, "  mongo:\n", "  tls: "+tc.tls+"\n  mongo:\n", 1)
			}
			_, err := registry.Parse([]byte(text))
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err %v, want %q", err, tc.err)
			}
		})
	}
}

// TestSinkOverTLS applies to a TLS-only FerretDB over a verified link and
// reads the row back; another CA, TLS on against a plain server and TLS
// off against the TLS-only one are refused, the TLS ones as fatal errors
// naming the fix.
func TestSinkOverTLS(t *testing.T) {
	good, other := harness.TLSCerts(t, "mongo"), harness.TLSCerts(t, "other")
	tlsAddr := harness.StartFerretDB(t, "../..", harness.FerretDBOptions{TLS: good})
	plainAddr := harness.StartFerretDB(t, "../..", harness.FerretDBOptions{})
	block := func(addr string, t config.TLS) *SinkConfig {
		c := &SinkConfig{Mongo: &Sink{URI: "mongodb://" + addr + "/"}, TLS: t}
		s := config.NewScope("sink", "")
		c.Validate(s)
		if err := s.Err(); err != nil {
			panic(err)
		}
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := engine.Env{Channel: "tls", Workers: 1}

	snk, err := block(tlsAddr, config.TLS{CA: good.CA}).Open(ctx, env)
	if err != nil {
		t.Fatalf("open over TLS: %v", err)
	}
	table := &event.Table{Schema: "app", Name: "kv", Columns: []event.Column{{Name: "id"}, {Name: "v"}}, PrimaryKey: []int{0}}
	txn := &event.Txn{Pos: event.Position("1"), Kind: event.KindDML,
		Changes: []event.Change{{Op: event.OpInsert, Namespace: "app.kv", Table: table, After: []any{int32(7), "over-tls"}}}}
	if err := snk.Apply(ctx, []*event.Txn{txn}); err != nil {
		t.Fatalf("apply over TLS: %v", err)
	}
	snk.Close()
	clientTLS, err := good.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := gomongo.Connect(options.Client().ApplyURI("mongodb://" + tlsAddr + "/").SetTLSConfig(clientTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	var doc bson.M
	if err := client.Database("app").Collection("kv").FindOne(ctx, bson.D{{Key: "_id", Value: int32(7)}}).Decode(&doc); err != nil || doc["v"] != "over-tls" {
		t.Fatalf("row on the target: %v %v", doc, err)
	}

	for _, tc := range []struct {
		name string
		addr string
		tls  config.TLS
		want string
	}{
		{"another CA", tlsAddr, config.TLS{CA: other.CA}, "not signed by a CA Hamal trusts"},
		{"TLS on, plain server", plainAddr, config.TLS{CA: good.CA}, "sink.tls.enabled: false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := block(tc.addr, tc.tls).Open(ctx, env)
			if !errors.Is(err, tlslink.ErrTLS) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("open: %v, want a TLS error naming %q", err, tc.want)
			}
			var r strings.Builder
			block(tc.addr, tc.tls).Check(ctx, env, engine.NewReport(&r))
			if !strings.Contains(r.String(), "FAIL") || strings.Contains(r.String(), "reachable") || !strings.Contains(r.String(), tc.want) {
				t.Errorf("check:\n%s", r.String())
			}
		})
	}
	t.Run("TLS off, TLS-only server", func(t *testing.T) {
		if _, err := block(tlsAddr, config.TLS{}).Open(ctx, env); err == nil {
			t.Error("a plain client opened the TLS-only server")
		}
	})
}

// TestSourceTLSConfig: the source block's tls reaches source/mongo's
// Config (the driver's TLS config), the server name left to the driver
// unless set.
func TestSourceTLSConfig(t *testing.T) {
	ca := harness.TLSCerts(t, "mongo-src").CA
	c := &SourceConfig{Mongo: &Source{URI: "mongodb://a:1,b:2/?replicaSet=rs0"}, TLS: config.TLS{CA: ca}}
	s := config.NewScope("source", "")
	c.Validate(s)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	rc, err := c.ReaderConfig(engine.Env{})
	if err != nil || rc.TLS == nil || rc.TLS.RootCAs == nil || rc.TLS.ServerName != "" || rc.TLS.InsecureSkipVerify {
		t.Fatalf("reader TLS %+v %v", rc.TLS, err)
	}
	if blocks := config.TLSBlocks("source", c); len(blocks) != 1 || blocks[0].Key != "source.tls" || !blocks[0].TLS.Enabled {
		t.Errorf("TLSBlocks %+v", blocks)
	}
}
