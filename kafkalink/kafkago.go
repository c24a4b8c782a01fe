package kafkalink

import (
	"context"
	"net"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	kgosasl "github.com/segmentio/kafka-go/sasl"
	kgoplain "github.com/segmentio/kafka-go/sasl/plain"
	kgoscram "github.com/segmentio/kafka-go/sasl/scram"

	"github.com/hamal-replication/hamal/tlslink"
)

// The link for segmentio/kafka-go, which the Kafka sink and source use:
// TLS through the dial function (tlslink: verified, bounded, never plain
// when on), SASL as kafka-go's mechanism.

// dial is the link's dial function for kafka-go.
func (l Link) dial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	timeout := l.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		cfg := l.TLS
		if cfg != nil && cfg.ServerName == "" {
			cfg = cfg.Clone()
			if h, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = h
			}
		}
		return tlslink.Dial(ctx, addr, cfg, timeout, l.TLSKey)
	}
}

func (l Link) kafkaGoSASL() (kgosasl.Mechanism, error) {
	s := l.SASL
	if s == nil {
		return nil, nil
	}
	switch s.Mechanism {
	case Plain:
		return kgoplain.Mechanism{Username: s.User, Password: s.Password}, nil
	case ScramSHA256:
		return kgoscram.Mechanism(kgoscram.SHA256, s.User, s.Password)
	default:
		return kgoscram.Mechanism(kgoscram.SHA512, s.User, s.Password)
	}
}

// Transport is a kafka-go Transport over the link (writers, clients).
func (l Link) Transport() (*kafkago.Transport, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	m, err := l.kafkaGoSASL()
	if err != nil {
		return nil, err
	}
	return &kafkago.Transport{Dial: l.dial(), SASL: m, DialTimeout: 10 * time.Second}, nil
}
