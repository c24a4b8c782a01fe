package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLS is the tls block an engine's connection keys may hold: an encrypted
// connection to a server. With Enabled false and nothing else set, the
// connection is plain. Setting CA, Cert, Key, ServerName or SkipVerify
// implies Enabled. The server certificate is always verified unless
// SkipVerify is set, which the docs and the log call out as unsafe.
type TLS struct {
	Enabled    bool   `yaml:"enabled"`
	CA         string `yaml:"ca"`          // PEM file of the CA that signed the server certificate; empty: system roots
	Cert       string `yaml:"cert"`        // PEM client certificate, for servers that require one
	Key        string `yaml:"key"`         // PEM key of Cert
	ServerName string `yaml:"server_name"` // name in the server certificate; empty: the host of addr
	SkipVerify bool   `yaml:"skip_verify"` // accept any server certificate (testing only)
}

// TLS checks the tls block under key: any key set enables it, cert and
// key go together, the files exist.
func (s *Scope) TLS(key string, t *TLS) {
	if t.CA != "" || t.Cert != "" || t.Key != "" || t.ServerName != "" || t.SkipVerify {
		t.Enabled = true
	}
	if !t.Enabled {
		return
	}
	if (t.Cert == "") != (t.Key == "") {
		s.Bad("%s: cert and key go together; set both or neither", s.Key(key))
	}
	for _, f := range []struct{ name, path string }{{"ca", t.CA}, {"cert", t.Cert}, {"key", t.Key}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			s.Bad("%s.%s: %v", s.Key(key), f.name, err)
		}
	}
}

// Config builds the crypto/tls configuration for a connection to host, or
// nil when TLS is not enabled.
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
