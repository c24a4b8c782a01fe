package config

import (
	"strings"
	"testing"
)

func TestRedisKind(t *testing.T) {
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
	cfg, err := Parse([]byte(strings.Replace(base, "%s", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Site != "a" || cfg.Sink.Site != "b" || cfg.Source.Start != "fullsync" {
		t.Fatalf("parsed %+v %+v", cfg.Source, cfg.Sink)
	}
	for _, tc := range []struct{ extra, want string }{
		{"  server_id: 5\n", "source.server_id: not used by a redis source"},
		{"  tables: [\"app.*\"]\n", "source.tables / source.exclude: not used by a redis source"},
		{"  redis: {databases: {0: 2, 1: 2}}\n", "source databases 0 and 1 both map to target database 2"},
		{"  redis: {include_prefixes: [\"\"]}\n", "source.redis.include_prefixes[0]: empty prefix"},
		{"  redis: {exclude_prefix: [\"a\"]}\n", "source.redis.exclude_prefix: unknown key"},
		{"  redis: {databases: {-1: 2}}\n", "database numbers are 0 or more"},
		{"  start: current\n", "source.start: \"current\": a redis source always starts with a full sync"},
	} {
		_, err := Parse([]byte(strings.Replace(base, "%s", tc.extra, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.extra, err, tc.want)
		}
	}
}
