package kafkalink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/kafkatest"
	"github.com/hamal-replication/hamal/tlslink"
)

func serve(t *testing.T, o kafkatest.SecureOptions) string {
	t.Helper()
	c, err := kafkatest.ServeSecure(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// TestLink: over verified TLS with SCRAM the link produces and reads back
// a record, and kcat (librdkafka) reads it over SASL_SSL too; another CA,
// a wrong password, TLS against a plain broker and PLAIN without TLS are
// refused, each naming its cause and key.
func TestLink(t *testing.T) {
	good, other := harness.TLSCerts(t, "kafka"), harness.TLSCerts(t, "other")
	srvTLS, err := good.ServerConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	users := []kafkatest.User{{Mechanism: ScramSHA512, Name: "hamal", Password: "kafka-pw-1"}, {Mechanism: Plain, Name: "plain", Password: "kafka-pw-2"}}
	secure := serve(t, kafkatest.SecureOptions{TLS: srvTLS, Users: users, Opts: []kafkatest.Opt{kfake.SeedTopics(1, "t")}})
	plainBroker := serve(t, kafkatest.SecureOptions{Users: users, Opts: []kafkatest.Opt{kfake.SeedTopics(1, "t")}})
	tlsOf := func(ca string) *tls.Config {
		c, err := config.TLS{Enabled: true, CA: ca}.Config("")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	link := func(ca string, s *SASL) Link {
		l := Link{SASL: s, TLSKey: "sink.tls", SASLKey: "sink.kafka.sasl", DialTimeout: 3 * time.Second}
		if ca != "" {
			l.TLS = tlsOf(ca)
		}
		return l
	}
	scram := &SASL{Mechanism: ScramSHA512, User: "hamal", Password: "kafka-pw-1"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	l := link(good.CA, scram)
	opts, err := l.Opts()
	if err != nil {
		t.Fatal(err)
	}
	client, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(secure), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("over-tls-and-scram")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	fetches := client.PollFetches(ctx)
	if errs := fetches.Errors(); len(errs) > 0 || fetches.NumRecords() != 1 || string(fetches.Records()[0].Value) != "over-tls-and-scram" {
		t.Fatalf("read back: %d records, %v", fetches.NumRecords(), errs)
	}
	if _, err := exec.LookPath("kcat"); err == nil {
		out, err := exec.CommandContext(ctx, "kcat", "-b", secure, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
			"-X", "sasl.username=hamal", "-X", "sasl.password=kafka-pw-1", "-X", "ssl.ca.location="+good.CA,
			"-C", "-t", "t", "-o", "beginning", "-e", "-q", "-f", "%s\n").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "over-tls-and-scram" {
			t.Errorf("kcat over SASL_SSL: %v\n%s", err, out)
		}
	} else {
		t.Log("kcat not installed (Debian: apt-get install -y kcat): librdkafka interop not checked")
	}

	for _, tc := range []struct {
		name   string
		broker string
		link   Link
		target error
		want   string
	}{
		{"another CA", secure, link(other.CA, scram), tlslink.ErrTLS, "set sink.tls.ca"},
		// kfake hangs up on a refused login (a broker answers it with
		// SASL_AUTHENTICATION_FAILED: TestExplain).
		{"wrong password", secure, link(good.CA, &SASL{Mechanism: ScramSHA512, User: "hamal", Password: "nope"}), io.EOF, "check sink.kafka.sasl"},
		{"TLS against a plain broker", plainBroker, link(good.CA, scram), tlslink.ErrHandshakeTimeout, "no TLS answer"},
		{"PLAIN over TLS", secure, link(good.CA, &SASL{Mechanism: Plain, User: "plain", Password: "kafka-pw-2"}), nil, ""},
		{"SCRAM over plain TCP", plainBroker, link("", scram), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			err := tc.link.Ping(ctx, []string{tc.broker})
			if tc.target == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ping: %v, want %v naming %q", err, tc.target, tc.want)
			}
		})
	}
	if err := link("", &SASL{Mechanism: Plain, User: "plain", Password: "x"}).Validate(); err == nil || !strings.Contains(err.Error(), "sends the password as it is") {
		t.Errorf("PLAIN without TLS: %v", err)
	}
}

// TestExplain: a broker's SASL refusal is ErrSASL naming the keys.
func TestExplain(t *testing.T) {
	l := Link{SASL: &SASL{Mechanism: ScramSHA256}, TLSKey: "source.tls", SASLKey: "source.kafka.sasl"}
	err := l.Explain(fmt.Errorf("authenticate: %w", kerr.SaslAuthenticationFailed))
	if !errors.Is(err, ErrSASL) || !strings.Contains(err.Error(), "check source.kafka.sasl") {
		t.Errorf("Explain: %v", err)
	}
	plain := errors.New("connection refused")
	if l.Explain(plain) != plain {
		t.Error("Explain changed an error that is neither SASL nor TLS")
	}
}
