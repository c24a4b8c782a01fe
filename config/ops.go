package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"
)

// TLS configures an encrypted connection to a database server. With
// Enabled false and nothing else set, the connection is plain. Setting CA,
// Cert or Key implies Enabled. The server certificate is always verified
// unless SkipVerify is set, which the docs and the log call out as unsafe.
type TLS struct {
	Enabled    bool   `yaml:"enabled"`
	CA         string `yaml:"ca"`          // PEM file of the CA that signed the server certificate; empty: system roots
	Cert       string `yaml:"cert"`        // PEM client certificate, for servers that require one
	Key        string `yaml:"key"`         // PEM key of Cert
	ServerName string `yaml:"server_name"` // name in the server certificate; empty: the host of addr
	SkipVerify bool   `yaml:"skip_verify"` // accept any server certificate (testing only)
}

// Heartbeat configures the source heartbeat: Hamal writes hamal.heartbeat
// on the source every Interval, so lag is measured also while the source is
// idle (see docs/metrics.md).
type Heartbeat struct {
	Enabled  bool          `yaml:"enabled"`
	Interval time.Duration `yaml:"interval"`
}

// DefaultHeartbeatInterval is source.heartbeat.interval's default.
const DefaultHeartbeatInterval = time.Second

// validateOps checks the operations keys: TLS, heartbeat, admin token.
func validateOps(c *Config, bad func(string, ...any)) {
	validateTLS(bad, "source.tls", &c.Source.TLS)
	validateTLS(bad, "sink.tls", &c.Sink.TLS)
	if hb := &c.Source.Heartbeat; hb.Enabled {
		if hb.Interval == 0 {
			hb.Interval = DefaultHeartbeatInterval
		} else if hb.Interval < 100*time.Millisecond {
			bad("source.heartbeat.interval: %s is below 100ms; 1s is the usual value", hb.Interval)
		}
	}
	if c.Admin.TokenFile != "" {
		if c.Admin.Token != "" {
			bad("admin.token and admin.token_file are both set; keep one")
		} else if b, err := os.ReadFile(c.Admin.TokenFile); err != nil {
			bad("admin.token_file: %v", err)
		} else if c.Admin.Token = strings.TrimSpace(string(b)); c.Admin.Token == "" {
			bad("admin.token_file: %s is empty", c.Admin.TokenFile)
		}
	}
}

func validateTLS(bad func(string, ...any), key string, t *TLS) {
	if t.CA != "" || t.Cert != "" || t.Key != "" || t.ServerName != "" || t.SkipVerify {
		t.Enabled = true
	}
	if !t.Enabled {
		return
	}
	if (t.Cert == "") != (t.Key == "") {
		bad("%s: cert and key go together; set both or neither", key)
	}
	for _, f := range []struct{ name, path string }{{"ca", t.CA}, {"cert", t.Cert}, {"key", t.Key}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad("%s.%s: %v", key, f.name, err)
		}
	}
}

// Config builds the crypto/tls configuration for a connection to addr's
// host, or nil when TLS is not enabled.
func (t TLS) Config(host string) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.SkipVerify}
	if t.ServerName != "" {
		c.ServerName = t.ServerName
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificate in it", t.CA)
		}
		c.RootCAs = pool
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("tls cert/key: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}
