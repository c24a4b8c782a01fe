package config

import (
	"strings"
	"testing"
	"time"
)

func TestRelayKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra string
		err   string // substring; "" means valid
	}{
		{"no relay", "", ""},
		{"defaults", "relay: {dir: /tmp/relay}", ""},
		{"all keys", "relay: {dir: /tmp/relay, max_bytes: 2097152, max_age: 1m, fsync: always}", ""},
		{"missing dir", "relay: {max_bytes: 2097152}", "relay.dir: required"},
		{"same dir as checkpoint", "relay: {dir: /tmp/x/}", "relay.dir: /tmp/x/ is checkpoint.dir"},
		{"too small", "relay: {dir: /tmp/relay, max_bytes: 1000}", "relay.max_bytes: 1000 is below 1 MiB"},
		{"negative age", "relay: {dir: /tmp/relay, max_age: -1s}", "relay.max_age: must be positive"},
		{"bad fsync", "relay: {dir: /tmp/relay, fsync: sometimes}", `relay.fsync: "sometimes" is not one of`},
		{"unknown key", "relay: {dir: /tmp/relay, max_size: 5}", `relay.max_size: unknown key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(opsBase + tc.extra)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "defaults" {
				r := c.Relay
				if r.MaxBytes != DefaultRelayMaxBytes || r.MaxAge != 10*time.Minute || r.Fsync != "batch" {
					t.Errorf("defaults not filled: %+v", r)
				}
			}
			if tc.name == "no relay" && c.Relay != nil {
				t.Error("no relay block must leave Relay nil")
			}
		})
	}
}
