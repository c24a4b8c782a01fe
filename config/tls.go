package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
)

// TLS is the tls block an engine's connection keys may hold: an encrypted
// connection to a server. With Enabled false and nothing else set, the
// connection is plain. Setting CA, Cert, Key, ServerName or SkipVerify
// implies Enabled. The server certificate is always verified unless
// SkipVerify is set, which `hamal run` logs and `hamal check` reports as
// unsafe (Warning). Enabled means required: a link whose server offers no
// TLS is refused, never made in clear text.
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

// TLSAt is a tls block of a config and its key path.
type TLSAt struct {
	Key string // e.g. "source.tls", "targets[1].tls"
	TLS TLS
}

// TLSBlocks lists the tls blocks held by v (a block or any struct, at any
// depth, through pointers, slices and maps), their keys under path.
func TLSBlocks(path string, v any) []TLSAt {
	var out []TLSAt
	walkTLS(reflect.ValueOf(v), path, &out)
	return out
}

// TLSBlocks lists the tls blocks of the channel's source and sink.
func (c *Config) TLSBlocks() []TLSAt {
	return append(TLSBlocks("source", c.Source.Engine), TLSBlocks("sink", c.Sink.Engine)...)
}

var tlsType = reflect.TypeOf(TLS{})

func walkTLS(v reflect.Value, path string, out *[]TLSAt) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == tlsType {
			// Field by field: v may sit in an unexported embedded struct,
			// whose values cannot be taken as an interface.
			t := TLS{Enabled: v.FieldByName("Enabled").Bool(), CA: v.FieldByName("CA").String(),
				Cert: v.FieldByName("Cert").String(), Key: v.FieldByName("Key").String(),
				ServerName: v.FieldByName("ServerName").String(), SkipVerify: v.FieldByName("SkipVerify").Bool()}
			*out = append(*out, TLSAt{Key: path, TLS: t})
			return
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			sub := path
			if !strings.Contains(opts, "inline") {
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				sub = join(path, name)
			}
			walkTLS(v.Field(i), sub, out)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkTLS(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			walkTLS(v.MapIndex(k), join(path, fmt.Sprint(k)), out)
		}
	}
}

// Describe says in words what the block does to its link, for `hamal
// check`.
func (t TLS) Describe() string {
	switch {
	case !t.Enabled:
		return "off: the link is plain text"
	case t.SkipVerify:
		return "on, but the server certificate is NOT verified (skip_verify)"
	case t.CA != "":
		return "on, server certificate verified against " + t.CA
	}
	return "on, server certificate verified against the system's CAs"
}

// Warning is what to warn about the block at start, "" when nothing: a
// link that does not verify the server can be intercepted.
func (t TLS) Warning(key string) string {
	if t.Enabled && t.SkipVerify {
		return key + ".skip_verify is set: the server certificate is not verified, so anyone on the path can pose as the server and read the link (credentials included); set " + key + ".ca and remove skip_verify"
	}
	return ""
}
