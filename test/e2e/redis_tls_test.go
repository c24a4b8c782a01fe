package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
)

// TestRedisSourceTLS replicates from a TLS-only redis-server that
// requires client certificates, the master's certificate verified; with
// another CA, without a client certificate, with TLS on against a plain
// master and with TLS off against the TLS-only one, the channel refuses
// and says why, and nothing crosses in clear (no full sync, no key on the
// target).
func TestRedisSourceTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	const pw = "redis-src-pw-4e1"
	good, other := harness.TLSCerts(t, "redis"), harness.TLSCerts(t, "other")
	src := harness.RedisServer(t, harness.RedisOptions{TLS: good, ClientCerts: true, Password: pw})
	dst := harness.RedisServer(t, harness.RedisOptions{})
	seedRedis(t, src, "", 2000)
	tlsKeys := func(ca string, client bool) string {
		s := "  tls: {ca: " + ca
		if client {
			s += ", cert: " + good.Client + ", key: " + good.ClientKey
		}
		return s + "}\n"
	}

	ch := newRedisChannel(t, src, dst, redisChannelOpts{name: "tls", srcPassword: pw, sourceExtra: tlsKeys(good.CA, true)})
	if out, code := hamalCmd(t, "check", "--config", ch.path); code != 0 || !strings.Contains(out, "reachable over TLS") {
		t.Fatalf("hamal check over TLS: exit %d\n%s", code, out)
	}
	p := ch.startRunning(t)
	ch.waitState(t, 5*time.Minute, func(st pipeline.Status) bool {
		return st.InFlight == 0 && strings.Contains(st.CheckpointPosition, `"offset"`) && !strings.Contains(st.CheckpointPosition, "snapshot")
	})
	redisWorkload(t, src, "s", 2000, rand.New(rand.NewPCG(4, 1)))
	waitRedisEqual(t, src, dst, 5*time.Minute)
	p.kill(t)

	// Each refusal: the state and the words of the error; fatal ones stop
	// in state error, the others retry with the message.
	refused := func(t *testing.T, name string, master *harness.Redis, extra string, fatal bool, want ...string) {
		t.Helper()
		empty := harness.RedisServer(t, harness.RedisOptions{})
		c := newRedisChannel(t, master, empty, redisChannelOpts{name: name, srcPassword: pw, sourceExtra: extra})
		out, code := hamalCmd(t, "check", "--config", c.path)
		if code != 1 || strings.Contains(out, "source redis "+master.Addr+" reachable") || !containsAll(out, want) {
			t.Errorf("hamal check: exit %d, want 1 naming %q, the source not reachable\n%s", code, want, out)
		}
		c.start(t)
		st := c.waitState(t, time.Minute, func(st pipeline.Status) bool {
			return st.State == pipeline.StateError || (!fatal && st.State == pipeline.StateRetrying && st.LastError != "")
		})
		if fatal && st.State != pipeline.StateError {
			t.Errorf("state %s, want error", st.State)
		}
		if !containsAll(st.LastError, want) {
			t.Errorf("last error %q, want it to name %q", st.LastError, want)
		}
		keys, err := empty.RedisKeys(context.Background(), "hamal:")
		if err != nil || len(keys) != 0 {
			t.Errorf("the target got %d keys (%v): something crossed", len(keys), err)
		}
	}
	t.Run("another CA", func(t *testing.T) {
		refused(t, "tls-ca", src, tlsKeys(other.CA, true), true, "not signed by a CA Hamal trusts", "source.tls.ca")
	})
	t.Run("no client certificate", func(t *testing.T) {
		refused(t, "tls-nocert", src, tlsKeys(good.CA, false), true, "refused the TLS handshake", "source.tls.cert")
	})
	t.Run("TLS off against a TLS-only master", func(t *testing.T) {
		refused(t, "tls-off", src, "", false, "closed the connection at once", "set source.tls")
	})
	t.Run("TLS on against a plain master", func(t *testing.T) {
		plain := harness.RedisServer(t, harness.RedisOptions{Password: pw})
		seedRedis(t, plain, "", 100)
		refused(t, "tls-plain", plain, tlsKeys(good.CA, true), false, "TLS", "source.tls.enabled")
		if full := infoInt(t, plain, "stats", "sync_full"); full != 0 {
			t.Errorf("the plain master served %d full syncs: the stream crossed in clear", full)
		}
	})
}

// TestRedisSinkTLS applies to a TLS-only target requiring client
// certificates over a verified link; another CA is a fatal error naming
// sink.tls.ca, and a plain client is told to set sink.tls.
func TestRedisSinkTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	good, other := harness.TLSCerts(t, "redis-dst"), harness.TLSCerts(t, "other")
	src := harness.RedisServer(t, harness.RedisOptions{})
	dst := harness.RedisServer(t, harness.RedisOptions{TLS: good, ClientCerts: true})
	seedRedis(t, src, "", 1000)
	withSinkTLS := func(c *channel, block string) {
		text, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		text = []byte(strings.Replace(string(text), "sink:\n  kind: redis\n", "sink:\n  kind: redis\n"+block, 1))
		if err := os.WriteFile(c.path, text, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ch := newRedisChannel(t, src, dst, redisChannelOpts{name: "sink-tls"})
	withSinkTLS(ch, "  tls: {ca: "+good.CA+", cert: "+good.Client+", key: "+good.ClientKey+"}\n")
	if out, code := hamalCmd(t, "check", "--config", ch.path); code != 0 || !strings.Contains(out, "target redis "+dst.Addr+" reachable over TLS") {
		t.Fatalf("hamal check: exit %d\n%s", code, out)
	}
	p := ch.startRunning(t)
	redisWorkload(t, src, "s", 1000, rand.New(rand.NewPCG(5, 2)))
	waitRedisEqual(t, src, dst, 5*time.Minute)
	p.kill(t)

	for _, tc := range []struct {
		name, block string
		fatal       bool
		want        []string
	}{
		{"another CA", "  tls: {ca: " + other.CA + ", cert: " + good.Client + ", key: " + good.ClientKey + "}\n", true, []string{"not signed by a CA Hamal trusts", "sink.tls.ca"}},
		{"TLS off", "", false, []string{"set sink.tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRedisChannel(t, src, dst, redisChannelOpts{name: "sink-tls-bad"})
			withSinkTLS(c, tc.block)
			c.start(t)
			st := c.waitState(t, time.Minute, func(st pipeline.Status) bool {
				return st.State == pipeline.StateError || (!tc.fatal && st.State == pipeline.StateRetrying && st.LastError != "")
			})
			if tc.fatal != (st.State == pipeline.StateError) || !containsAll(st.LastError, tc.want) {
				t.Errorf("state %s, last error %q; want fatal %v naming %q", st.State, st.LastError, tc.fatal, tc.want)
			}
		})
	}
}
