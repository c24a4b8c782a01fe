package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"slices"
	"strings"
)

// Block is one engine's keys in the source or sink mapping (or in another
// file that reuses an engine's keys, such as a migration plan). Its
// exported fields' yaml tags name the keys: config checks them strictly
// (an unknown key is an error naming its path), decodes the mapping into
// the block, then calls Validate.
type Block interface {
	// Validate fills defaults, reads *_file secrets and reports every
	// problem through s, each naming its key (s.Key) and the fix.
	Validate(s *Scope)
}

// Redactor is implemented by a block holding secrets other than its
// password keys' values, or holding them elsewhere (a URI with
// credentials): Redacted returns a copy safe to log.
type Redactor interface {
	Redacted() Block
}

// Pairer is implemented by a block whose keys depend on the rest of the
// channel (a MySQL source's start: snapshot needs a MySQL sink and no
// relay): Pair runs once every block validated and reports through s,
// the block's own scope, what the pairing refuses.
type Pairer interface {
	Pair(c *Config, s *Scope)
}

// Kinds resolves source.kind and sink.kind to the engine's block. Config
// knows no engine: a registry of engine drivers implements Kinds.
type Kinds interface {
	// SourceBlock returns a new, empty source block for kind, or an error
	// saying why there is none (kind empty, unknown, or an engine that
	// cannot be a source) and which kinds can be, without the key's name:
	// `unknown kind "mongodb"; did you mean "mongo"? supported: mongo, mysql`.
	SourceBlock(kind string) (Block, error)
	// SinkBlock is SourceBlock for sink.kind.
	SinkBlock(kind string) (Block, error)
}

// Scope is where a block is validated: its key path and its side's
// loop-guard site; it collects the problems found. Sub-scopes share the
// problems of their parent.
type Scope struct {
	// Path is the block's key path: "source", "sink.conflicts",
	// "targets[1]" in a migration plan.
	Path string
	// Site is this side's loop-guard site (source.site or sink.site of the
	// channel); "" when the loop guard is off.
	Site     string
	problems *[]string
}

// NewScope starts the validation of a block at path.
func NewScope(path, site string) *Scope {
	return &Scope{Path: path, Site: site, problems: new([]string)}
}

// Sub is the scope of the block under key name.
func (s *Scope) Sub(name string) *Scope {
	return &Scope{Path: s.Key(name), Site: s.Site, problems: s.problems}
}

// Key is the full path of the block's key name, e.g. "source.addr".
func (s *Scope) Key(name string) string { return join(s.Path, name) }

// Bad records a problem; the message names its key (s.Key) and the fix.
func (s *Scope) Bad(format string, args ...any) {
	*s.problems = append(*s.problems, fmt.Sprintf(format, args...))
}

// OneOf checks that *v, the value of the block's key name, is one of
// allowed, and sets it to the first of them when it is empty (the
// default); another value is a problem naming the key and the choices.
func (s *Scope) OneOf(name string, v *string, allowed ...string) {
	if *v == "" {
		*v = allowed[0]
		return
	}
	if !slices.Contains(allowed, *v) {
		s.Bad("%s: %q is not one of %s", s.Key(name), *v, strings.Join(allowed, ", "))
	}
}

// Problems lists what was recorded, in order.
func (s *Scope) Problems() []string { return *s.problems }

// Err returns the problems as one error, nil when there are none.
func (s *Scope) Err() error {
	if len(*s.problems) == 0 {
		return nil
	}
	return joinProblems(*s.problems)
}

// Addr checks that key holds a host:port address.
func (s *Scope) Addr(key, addr string) {
	if addr == "" {
		s.Bad("%s: required, as host:port, e.g. 127.0.0.1:3306", s.Key(key))
		return
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		s.Bad("%s: %q is not host:port, e.g. 127.0.0.1:3306", s.Key(key), addr)
	}
}

// Globs checks that key holds schema.table globs (path.Match syntax).
func (s *Scope) Globs(key string, globs []string) {
	for i, g := range globs {
		if _, err := path.Match(g, "x.y"); err != nil || !strings.Contains(g, ".") {
			s.Bad("%s[%d]: %q is not a schema.table glob, e.g. \"app.*\"", s.Key(key), i, g)
		}
	}
}

// Secret reads the password from file (the password_file key) into
// *password (the password key); both set is a problem.
func (s *Scope) Secret(password *string, file string) {
	if file == "" {
		return
	}
	if *password != "" {
		s.Bad("%s and %s are both set; keep one", s.Key("password"), s.Key("password_file"))
		return
	}
	b, err := os.ReadFile(file)
	if err != nil {
		s.Bad("%s: %v", s.Key("password_file"), err)
		return
	}
	*password = strings.TrimRight(string(b), "\r\n")
}

// validateBlock runs b's Validate in a scope of its own and returns its
// problems.
func validateBlock(b Block, path, site string) []string {
	s := NewScope(path, site)
	b.Validate(s)
	return s.Problems()
}

func joinProblems(problems []string) error {
	if len(problems) == 1 {
		return errors.New(problems[0])
	}
	return errors.New(strings.Join(problems, "\n  "))
}
