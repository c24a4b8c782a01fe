package redis

import (
	"os"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/engine"
)

func TestConfig(t *testing.T) {
	base := `name: a2b
source:
  kind: redis
  addr: 127.0.0.1:6379
  site: a
%ssink:
  kind: redis
  addr: 127.0.0.1:6380
  site: b
checkpoint:
  dir: ./var/a2b
`
	reg := engine.NewRegistry(Driver)
	cfg, err := reg.Parse([]byte(strings.Replace(base, "%s", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	src := cfg.Source.Engine.(*SourceConfig)
	if cfg.Source.Site != "a" || cfg.Sink.Site != "b" || src.Start != "fullsync" || strings.Contains(src.StartsAt(), "source.start") || !strings.Contains(src.StartsAt(), "full sync") {
		t.Fatalf("parsed %+v %+v %+v", cfg.Source, cfg.Sink, src)
	}
	if rc, _ := src.ReaderConfig(engine.SourceEnv(cfg, nil)); rc.Site != "a" || rc.Channel != "a2b" || rc.Filter != nil {
		t.Errorf("reader config %+v", rc)
	}
	if ac, _ := cfg.Sink.Engine.(*SinkConfig).ApplierConfig(engine.SinkEnv(cfg, nil)); ac.Site != "b" || ac.Workers != 16 || ac.Addr != "127.0.0.1:6380" {
		t.Errorf("applier config %+v", ac)
	}
	for _, tc := range []struct{ extra, want string }{
		// MySQL's keys are unknown keys of a redis source.
		{"  server_id: 5\n", "source.server_id: unknown key for a redis source"},
		{"  tables: [\"app.*\"]\n", "source.tables: unknown key for a redis source"},
		{"  redis: {databases: {0: 2, 1: 2}}\n", "source databases 0 and 1 both map to target database 2"},
		{"  redis: {include_prefixes: [\"\"]}\n", "source.redis.include_prefixes[0]: empty prefix"},
		{"  redis: {exclude_prefixes: [\"hamal:x\"]}\n", "keys starting with hamal: are Hamal's own"},
		{"  redis: {exclude_prefix: [\"a\"]}\n", "source.redis.exclude_prefix: unknown key"},
		{"  redis: {databases: {-1: 2}}\n", "database numbers are 0 or more"},
		{"  start: current\n", "source.start: \"current\": a redis source always starts with a full sync"},
	} {
		_, err := reg.Parse([]byte(strings.Replace(base, "%s", tc.extra, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.extra, err, tc.want)
		}
	}
	if _, err := reg.Parse([]byte(strings.Replace(strings.Replace(base, "%s", "", 1), "  addr: 127.0.0.1:6380\n", "  addr: 127.0.0.1:6380\n  allow_keyless_tables: [a.b]\n", 1))); err == nil ||
		!strings.Contains(err.Error(), "sink.allow_keyless_tables: unknown key for a redis sink") {
		t.Errorf("a MySQL sink key on a redis sink: %v", err)
	}
	cfg, err = reg.Parse([]byte(strings.Replace(base, "%s", "  redis: {include_prefixes: [a:], databases: {0: 1}}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := cfg.Source.Engine.(*SourceConfig).ReaderConfig(engine.Env{}); rc.Filter == nil || rc.Filter.Include[0] != "a:" || rc.Filter.Databases[0] != 1 {
		t.Errorf("filter %+v", rc.Filter)
	}
}

// TestTLSKeys: source.tls and sink.tls reach the reader's and the
// applier's configs; source.max_bulk_bytes defaults to Redis's own limit
// and must be positive.
func TestTLSKeys(t *testing.T) {
	reg := engine.NewRegistry(Driver)
	ca := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(ca, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := `name: tls
source: {kind: redis, addr: "127.0.0.1:6379", tls: {enabled: true, server_name: redis.example}}
sink: {kind: redis, addr: "127.0.0.1:6380", tls: {enabled: true}}
checkpoint: {dir: /tmp/x}
`
	cfg, err := reg.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	src := cfg.Source.Engine.(*SourceConfig)
	rc, err := src.ReaderConfig(engine.Env{})
	if err != nil || rc.TLS == nil || rc.TLS.ServerName != "redis.example" || rc.MaxBulkBytes != 512<<20 {
		t.Errorf("reader config TLS %+v, max bulk %d, %v", rc.TLS, rc.MaxBulkBytes, err)
	}
	ac, err := cfg.Sink.Engine.(*SinkConfig).ApplierConfig(engine.Env{})
	if err != nil || ac.TLS == nil || ac.TLS.ServerName != "127.0.0.1" {
		t.Errorf("applier config TLS %+v, %v", ac.TLS, err)
	}
	if _, err := reg.Parse([]byte(strings.Replace(text, "server_name: redis.example}", "server_name: redis.example}, max_bulk_bytes: -1", 1))); err == nil || !strings.Contains(err.Error(), "source.max_bulk_bytes: must be positive") {
		t.Errorf("negative max_bulk_bytes: %v", err)
	}
	bad := strings.Replace(text, "tls: {enabled: true}}", "tls: {ca: "+ca+"}}", 1)
	cfg, err = reg.Parse([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Sink.Engine.(*SinkConfig).ApplierConfig(engine.Env{}); err == nil || !strings.Contains(err.Error(), "sink.tls: tls ca") {
		t.Errorf("a CA file without PEM: %v", err)
	}
}
