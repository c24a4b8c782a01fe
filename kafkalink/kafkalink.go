package kafkalink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/hamal-replication/hamal/tlslink"
)

// SASL mechanisms.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// ErrSASL marks a SASL authentication the brokers refused: fatal.
var ErrSASL = errors.New("kafka SASL authentication failed")

// SASL is a SASL login.
type SASL struct {
	Mechanism      string
	User, Password string
}

// Link is the security of one side's connections to its brokers.
type Link struct {
	TLS  *tls.Config // nil: plain TCP
	SASL *SASL       // nil: no authentication
	// TLSKey and SASLKey name the blocks in messages ("sink.tls",
	// "sink.kafka.sasl").
	TLSKey, SASLKey string
	// DialTimeout bounds a dial and a TLS handshake; 0: 10 s.
	DialTimeout time.Duration
}

// Validate reports a link that would send a secret in clear text.
func (l Link) Validate() error {
	if l.SASL == nil {
		return nil
	}
	switch l.SASL.Mechanism {
	case Plain:
		if l.TLS == nil {
			return fmt.Errorf("%s: mechanism PLAIN sends the password as it is, and %s is off: enable %s, or use SCRAM-SHA-512", l.SASLKey, l.TLSKey, l.TLSKey)
		}
	case ScramSHA256, ScramSHA512:
	default:
		return fmt.Errorf("%s.mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", l.SASLKey, l.SASL.Mechanism)
	}
	return nil
}

// Opts are the franz-go options of the link: the dialer (TLS through
// tlslink, each broker verified under its own host name unless the tls
// block names one) and the SASL mechanism.
func (l Link) Opts() ([]kgo.Opt, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	timeout := l.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	opts := []kgo.Opt{kgo.Dialer(func(ctx context.Context, _, host string) (net.Conn, error) {
		cfg := l.TLS
		if cfg != nil && cfg.ServerName == "" {
			cfg = cfg.Clone()
			if h, _, err := net.SplitHostPort(host); err == nil {
				cfg.ServerName = h
			}
		}
		return tlslink.Dial(ctx, host, cfg, timeout, l.TLSKey)
	})}
	if s := l.SASL; s != nil {
		var m sasl.Mechanism
		switch s.Mechanism {
		case Plain:
			m = plain.Auth{User: s.User, Pass: s.Password}.AsMechanism()
		case ScramSHA256:
			m = scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism()
		case ScramSHA512:
			m = scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism()
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// Explain names the cause of err, an error of a client of the link: a
// refused SASL login (ErrSASL, with the keys to check) or a TLS failure
// (tlslink.ErrTLS); other errors are returned unchanged.
func (l Link) Explain(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.Is(err, kerr.IllegalSaslState) {
		return fmt.Errorf("%w: %v; check %s (mechanism, user, password) against the brokers' users", ErrSASL, err, l.SASLKey)
	}
	if l.TLS != nil {
		if e := tlslink.Explain(l.TLSKey, "the brokers", err); e != err {
			return e
		}
	}
	if l.SASL != nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		// Some brokers (and proxies) hang up on a refused login instead of
		// answering it; an outage looks the same, so this stays retryable.
		return fmt.Errorf("%w (the brokers closed the connection: if it repeats, check %s: mechanism, user, password)", err, l.SASLKey)
	}
	return err
}

// Ping asks the brokers for their metadata over the link, and explains a
// failure.
func (l Link) Ping(ctx context.Context, brokers []string) error {
	opts, err := l.Opts()
	if err != nil {
		return err
	}
	client, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Ping(ctx); err != nil {
		return fmt.Errorf("kafka brokers %v: %w", brokers, l.Explain(err))
	}
	return nil
}
