package mysql

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/mysqlconn"
)

// Conn is how Hamal reaches one MySQL/MariaDB server: the keys a source,
// a sink and a migration plan's servers share.
type Conn struct {
	Addr         string     `yaml:"addr"` // host:port
	User         string     `yaml:"user"`
	Password     string     `yaml:"password"`
	PasswordFile string     `yaml:"password_file"`
	TLS          config.TLS `yaml:"tls"`

	tlsKey string // the tls block's key path, for messages ("source.tls")
}

// Validate checks the connection keys: addr as host:port, a user, the
// password file read, the tls block.
func (c *Conn) Validate(s *config.Scope) { c.validate(s, "") }

// validate is Validate with userWhy appended to a missing user's message.
func (c *Conn) validate(s *config.Scope, userWhy string) {
	s.Addr("addr", c.Addr)
	if c.User == "" {
		s.Bad("%s: required%s", s.Key("user"), userWhy)
	}
	s.Secret(&c.Password, c.PasswordFile)
	s.TLS("tls", &c.TLS)
	c.tlsKey = s.Key("tls")
}

// TLSConfig is the crypto/tls configuration for addr's host, nil when the
// tls block is off.
func (c Conn) TLSConfig() (*tls.Config, error) {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		host = c.Addr
	}
	return c.TLS.Config(host)
}

// Connect opens a session as the account through mysqlconn: over TLS
// when the tls block is on (never clear text then), refusing a login that
// would expose the password, the login bounded in time; opts are applied
// before the handshake (capabilities such as tablecopy.LocalFiles). The
// caller sets up the session and closes it.
func (c Conn) Connect(ctx context.Context, opts ...client.Option) (*client.Conn, error) {
	tlsConfig, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	key := c.tlsKey
	if key == "" {
		key = "tls"
	}
	return mysqlconn.Connect(ctx, mysqlconn.Target{Addr: c.Addr, User: c.User, Password: c.Password, TLS: tlsConfig, Key: key}, opts...)
}

// overTLS is " over TLS" for a check's message when the block is on.
func overTLS(t config.TLS) string {
	if t.Enabled {
		return " over TLS"
	}
	return ""
}

func (c Conn) redacted() Conn {
	if c.Password != "" {
		c.Password = "***"
	}
	return c
}

var schemaName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// hamalSchema defaults the hamal_schema key and checks its value.
func hamalSchema(s *config.Scope, v *string) {
	if *v == "" {
		*v = DefaultHamalSchema
	} else if !schemaName.MatchString(*v) {
		s.Bad("%s: %q: use letters, digits and '_' (at most 64)", s.Key("hamal_schema"), *v)
	}
}

// tlsFor is TLSConfig with the block's key in the error.
func tlsFor(key string, c Conn) (*tls.Config, error) {
	t, err := c.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("%s.tls: %w", key, err)
	}
	return t, nil
}
