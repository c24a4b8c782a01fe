package harness

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Certs is a test CA and the certificates it signed, as PEM files made by
// the openssl command-line tool: the one place tests get certificates
// from, for every server that takes TLS (MariaDB, redis-server, the Kafka
// test broker, FerretDB).
type Certs struct {
	Dir       string
	CA        string // the CA's certificate
	CAKey     string
	Server    string // for 127.0.0.1 and localhost, server authentication
	ServerKey string
	Client    string // CN hamal, client authentication (for servers that require one)
	ClientKey string
}

// NewCerts makes a CA called name, a server certificate and a client
// certificate signed by it, in dir (files prefixed with name).
func NewCerts(dir, name string) (*Certs, error) {
	if _, err := exec.LookPath("openssl"); err != nil {
		return nil, errors.New("openssl not found: install it (Debian: apt-get install -y openssl) to run the TLS tests")
	}
	p := func(f string) string { return filepath.Join(dir, name+"-"+f) }
	c := &Certs{Dir: dir, CA: p("ca.pem"), CAKey: p("ca-key.pem"), Server: p("server.pem"), ServerKey: p("server-key.pem"),
		Client: p("client.pem"), ClientKey: p("client-key.pem")}
	serverExt, clientExt := p("server.ext"), p("client.ext")
	if err := os.WriteFile(serverExt, []byte("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(clientExt, []byte("extendedKeyUsage=clientAuth\n"), 0o600); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", c.CAKey, "-out", c.CA, "-days", "2", "-subj", "/CN=" + name + " test CA"},
		{"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", c.ServerKey, "-out", p("server.csr"), "-subj", "/CN=127.0.0.1"},
		{"x509", "-req", "-in", p("server.csr"), "-CA", c.CA, "-CAkey", c.CAKey, "-set_serial", "2", "-out", c.Server, "-days", "2", "-extfile", serverExt},
		{"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", c.ClientKey, "-out", p("client.csr"), "-subj", "/CN=hamal"},
		{"x509", "-req", "-in", p("client.csr"), "-CA", c.CA, "-CAkey", c.CAKey, "-set_serial", "3", "-out", c.Client, "-days", "2", "-extfile", clientExt},
	} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Servers running as another user must read the keys.
	for _, f := range []string{c.ServerKey, c.ClientKey} {
		_ = os.Chmod(f, 0o644)
	}
	return c, nil
}

// TLSCerts is NewCerts in a directory of the test's, skipping the test
// when openssl is missing.
func TLSCerts(t testing.TB, name string) *Certs {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found: install it (Debian: apt-get install -y openssl) to run the TLS tests")
	}
	c, err := NewCerts(t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ServerConfig is a tls.Config serving the server certificate; with
// requireClient it requires a client certificate signed by the CA.
func (c *Certs) ServerConfig(requireClient bool) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(c.Server, c.ServerKey)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if requireClient {
		pool, err := c.pool()
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig is a tls.Config trusting the CA and presenting the client
// certificate, for the tests' own clients.
func (c *Certs) ClientConfig() (*tls.Config, error) {
	pool, err := c.pool()
	if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(c.Client, c.ClientKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}, nil
}

func (c *Certs) pool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(c.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", c.CA)
	}
	return pool, nil
}

// MariaDBArgs are the mariadbd flags serving the server certificate.
func (c *Certs) MariaDBArgs() []string {
	return []string{"--ssl-ca=" + c.CA, "--ssl-cert=" + c.Server, "--ssl-key=" + c.ServerKey}
}
