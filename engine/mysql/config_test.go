package mysql

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
)

// readmeExample is the config the README and configs/demo.yaml promise
// works exactly as written.
const readmeExample = `name: demo
source:
  kind: mysql
  addr: 127.0.0.1:23306
  user: repl
  password: ${SRC_PASSWORD}
  server_id: 1001
  start: current
  tables: ["app.*"]
sink:
  kind: mysql
  addr: 127.0.0.1:23307
  user: root
  password: ""
apply:
  workers: 16
checkpoint:
  dir: ./var/demo
admin:
  listen: 127.0.0.1:9650
`

func parse(text string) (*config.Config, error) {
	return engine.NewRegistry(Driver).Parse([]byte(text))
}

func blocks(t *testing.T, cfg *config.Config) (*SourceConfig, *SinkConfig) {
	t.Helper()
	src, ok1 := cfg.Source.Engine.(*SourceConfig)
	snk, ok2 := cfg.Sink.Engine.(*SinkConfig)
	if !ok1 || !ok2 {
		t.Fatalf("blocks %T, %T", cfg.Source.Engine, cfg.Sink.Engine)
	}
	return src, snk
}

func TestConfigReadmeExample(t *testing.T) {
	t.Setenv("SRC_PASSWORD", "s3cr:et#1")
	cfg, err := parse(readmeExample)
	if err != nil {
		t.Fatal(err)
	}
	src, snk := blocks(t, cfg)
	if src.Password != "s3cr:et#1" || src.ServerID != 1001 || src.Tables[0] != "app.*" || src.Start != "current" {
		t.Fatalf("source = %+v", src)
	}
	if snk.Password != "" || snk.User != "root" || cfg.Apply.Workers != 16 {
		t.Fatalf("sink/apply = %+v %+v", snk, cfg.Apply)
	}
	if src.HamalSchema != "hamal" || snk.HamalSchema != "hamal" {
		t.Errorf("hamal_schema defaults: %q %q", src.HamalSchema, snk.HamalSchema)
	}
	if r := cfg.Redacted(); r.Source.Engine.(*SourceConfig).Password != "***" || src.Password == "***" {
		t.Fatalf("redaction: %q / %q", r.Source.Engine.(*SourceConfig).Password, src.Password)
	}
	if src.StartsAt() != "source.start=current" || src.Endpoint() != "127.0.0.1:23306" || snk.Endpoint() != "127.0.0.1:23307" {
		t.Errorf("StartsAt %q, endpoints %q %q", src.StartsAt(), src.Endpoint(), snk.Endpoint())
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("SRC_PASSWORD", "x")
	cases := []struct {
		name     string
		from, to string
		want     []string
	}{
		{"unknown key with path and suggestion", "  user: repl", "  user: repl\n  passwrd: x",
			[]string{"source.passwrd: unknown key for a mysql source", `did you mean "source.password"`}},
		{"another engine's key", "  user: repl", "  user: repl\n  redis: {include_prefixes: [a]}",
			[]string{"source.redis: unknown key for a mysql source", "known keys here: addr, exclude, flavor"}},
		{"missing server id", "  server_id: 1001\n", "", []string{"source.server_id: required"}},
		{"missing user", "  user: repl\n", "", []string{"source.user: required (a user with REPLICATION SLAVE"}},
		{"bad addr", "127.0.0.1:23307", "localhost", []string{`sink.addr: "localhost" is not host:port`}},
		{"bad glob", `["app.*"]`, `["app"]`, []string{`source.tables[0]: "app" is not a schema.table glob`}},
		{"bad flavor", "  start: current", "  start: current\n  flavor: percona", []string{`source.flavor: "percona" is not one of mysql, mariadb`}},
		{"heartbeat too fast", "  start: current", "  start: current\n  heartbeat: {enabled: true, interval: 10ms}",
			[]string{"source.heartbeat.interval: 10ms is below 100ms"}},
		{"bad schema", "  user: root", "  user: root\n  hamal_schema: 'x-y'", []string{`sink.hamal_schema: "x-y"`}},
		{"conflicts without sites", "  user: root", "  user: root\n  conflicts: {default: target-wins}",
			[]string{"sink.conflicts: needs source.site and sink.site"}},
		{"unsynced without sites", "  user: root", "  user: root\n  unsynced: {app.orders: user_id}",
			[]string{"sink.unsynced: needs source.site and sink.site"}},
		{"tls typo", "  user: root", "  user: root\n  tls: {verify: false}", []string{"sink.tls.verify: unknown key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(readmeExample, tc.from, tc.to, 1)
			if text == readmeExample {
				t.Fatalf("replacement %q did not apply", tc.from)
			}
			_, err := parse(text)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestHeartbeatDefaults(t *testing.T) {
	t.Setenv("SRC_PASSWORD", "x")
	cfg, err := parse(strings.Replace(readmeExample, "  start: current", "  start: current\n  heartbeat: {enabled: true}", 1))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := blocks(t, cfg)
	if src.Heartbeat.Interval != time.Second {
		t.Errorf("interval %s, want 1s", src.Heartbeat.Interval)
	}
	run, err := src.Sidecar(engine.Env{Channel: "demo"})
	if err != nil || run == nil {
		t.Errorf("heartbeat on: sidecar nil %v, %v", run == nil, err)
	}
	src.Heartbeat.Enabled = false
	if run, err := src.Sidecar(engine.Env{}); run != nil || err != nil {
		t.Errorf("heartbeat off: sidecar nil %v, %v", run == nil, err)
	}
}

func TestConflictPolicies(t *testing.T) {
	base := "name: x\nsource: {kind: mysql, addr: 'h:1', user: u, server_id: 1, site: a}\nsink:\n  kind: mysql\n  addr: 'h:2'\n  user: u\n  site: b\n  conflicts:\n%scheckpoint: {dir: d}\n"
	cases := []struct{ name, conflicts, wantErr string }{
		{"table lww", "    tables:\n      app.users: {policy: last-writer-wins, column: updated_at}\n", ""},
		{"default target", "    default: target-wins\n", ""},
		{"lww without column", "    tables:\n      app.users: {policy: last-writer-wins}\n", "sink.conflicts.tables.app.users.column: required"},
		{"unknown policy", "    default: newest\n", `sink.conflicts.default: policy "newest" is not one of`},
		{"typo in a table's key", "    tables:\n      app.users: {polcy: target-wins}\n", `sink.conflicts.tables.app.users.polcy: unknown key`},
		{"default lww", "    default: last-writer-wins\n", "set it per table under sink.conflicts.tables"},
		{"table not schema.table", "    tables:\n      users: {policy: target-wins}\n", "sink.conflicts.tables.users: name the table as schema.table"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(fmt.Sprintf(base, tc.conflicts))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				_, snk := blocks(t, cfg)
				ac, err := snk.ApplierConfig(engine.SinkEnv(cfg, nil))
				if err != nil {
					t.Fatal(err)
				}
				if r := snk.Conflicts.Rules(); len(r.Tables) != len(ac.Conflicts.Tables) || r.Default != ac.Conflicts.Default || ac.Site != "b" {
					t.Errorf("applier config %+v does not carry the rules %+v and site b", ac, r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestApplierAndReaderConfigs: the blocks become source/mysql's and
// sink/mysql's configs with TLS for addr's host.
func TestApplierAndReaderConfigs(t *testing.T) {
	dir := t.TempDir()
	ca := dir + "/ca.pem"
	writeCA(t, ca)
	cfg, err := parse(fmt.Sprintf(`name: c
source: {kind: mysql, addr: 'db1.example:3306', user: u, server_id: 7, tls: {ca: %s}, tables: [a.b]}
sink: {kind: mysql, addr: 'db2.example:3306', user: w, tls: {enabled: true, server_name: other.example}}
apply: {workers: 5}
checkpoint: {dir: d}
`, ca))
	if err != nil {
		t.Fatal(err)
	}
	src, snk := blocks(t, cfg)
	rc, err := src.ReaderConfig(engine.SourceEnv(cfg, nil))
	if err != nil {
		t.Fatal(err)
	}
	if rc.TLS == nil || rc.TLS.ServerName != "db1.example" || rc.TLS.RootCAs == nil || rc.ServerID != 7 || rc.Tables[0] != "a.b" || rc.HamalSchema != "hamal" {
		t.Errorf("reader config %+v", rc)
	}
	ac, err := snk.ApplierConfig(engine.SinkEnv(cfg, nil))
	if err != nil {
		t.Fatal(err)
	}
	if ac.TLS == nil || ac.TLS.ServerName != "other.example" || ac.Workers != 5 || ac.Channel != "c" || ac.User != "w" {
		t.Errorf("applier config %+v", ac)
	}
}

// writeCA writes a self-signed CA certificate (PEM) to path.
func writeCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOwnershipConfig(t *testing.T) {
	base := "name: x\nsource: {kind: mysql, addr: 'h:1', user: u, server_id: 1%s}\nsink:\n  kind: mysql\n  addr: 'h:2'\n  user: u\n%s  ownership:\n%scheckpoint: {dir: d}\n"
	sites := ", site: a"
	sinkSite := "  site: b\n"
	cases := []struct{ name, site, sinkSite, ownership, wantErr string }{
		{"range", sites, sinkSite, "    app.orders: {column: user_id, home: {sites: [a, b], rule: range, ranges: [{shard: 0, to: 1000}, {shard: 1, from: 1000}]}}\n", ""},
		{"list with default", sites, sinkSite, "    app.orders: {column: region, home: {sites: [a, b], rule: list, lists: {0: [cn, hk]}, default: 1}}\n", ""},
		{"no site", "", "", "    app.orders: {column: user_id, home: {sites: [a, b], rule: hash}}\n", "sink.ownership: needs source.site and sink.site"},
		{"no sites", sites, sinkSite, "    app.orders: {column: user_id, home: {rule: hash}}\n", "sink.ownership.app.orders.home.sites: list the sites"},
		{"gap", sites, sinkSite, "    app.orders: {column: user_id, home: {sites: [a, b], rule: range, ranges: [{shard: 0, to: 10}, {shard: 1, from: 20}]}}\n", "sink.ownership.app.orders.home: ranges leave keys from 10 to 20 uncovered"},
		{"shard past sites", sites, sinkSite, "    app.orders: {column: user_id, home: {sites: [a, b], rule: list, lists: {2: [x]}}}\n", "names site 2, but there are 2 sites"},
		{"no column", sites, sinkSite, "    app.orders: {home: {sites: [a], rule: hash}}\n", "give its owner column"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(fmt.Sprintf(base, tc.site, tc.sinkSite, tc.ownership))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				_, snk := blocks(t, cfg)
				ac, err := snk.ApplierConfig(engine.SinkEnv(cfg, nil))
				if err != nil {
					t.Fatal(err)
				}
				o := ac.Ownership["app.orders"]
				if o.Rule == nil || len(o.Sites) != 2 {
					t.Fatalf("applier ownership %+v", o)
				}
				key := any(int64(5))
				if o.Column == "region" {
					key = "hk"
				}
				if shard, err := o.Rule.Shard(key); err != nil || o.Sites[shard] != "a" {
					t.Errorf("owner %v: home %d, %v; want site a", key, shard, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
