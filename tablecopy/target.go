package tablecopy

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-mysql-org/go-mysql/client"
)

// ConnTarget is a Target writing over plain connections of its own, for a
// copy that is the target's only writer while it runs (a migration's copy
// phase). Connections are opened on demand, one per concurrent Write, and
// kept for the next; a connection whose Write failed is closed.
type ConnTarget struct {
	// Name is how errors name the target, e.g. "targets[1] 10.0.0.2:3306".
	Name string
	// Dial opens a connection; it must include the LocalFiles option for
	// FormatLoad. The target sets it up with SetupTarget.
	Dial func(ctx context.Context) (*client.Conn, error)

	mu   sync.Mutex
	idle []*client.Conn
}

var _ Target = (*ConnTarget)(nil)

// Write runs stmts in one transaction.
func (t *ConnTarget) Write(ctx context.Context, table string, stmts []Statement) error {
	c, err := t.get(ctx)
	if err != nil {
		return err
	}
	netConn := c.Conn.Conn
	stop := context.AfterFunc(ctx, func() { _ = netConn.Close() })
	err = writeTxn(c, stmts)
	if !stop() {
		c.Close()
		return context.Cause(ctx)
	}
	if err != nil {
		_, _ = c.Execute("ROLLBACK")
		c.Close()
		return fmt.Errorf("%s: %w", t.Name, err)
	}
	t.mu.Lock()
	t.idle = append(t.idle, c)
	t.mu.Unlock()
	return nil
}

// writeTxn runs stmts between BEGIN and COMMIT.
func writeTxn(c *client.Conn, stmts []Statement) error {
	if _, err := c.Execute("BEGIN"); err != nil {
		return err
	}
	for _, s := range stmts {
		if err := Exec(c, s); err != nil {
			return err
		}
	}
	_, err := c.Execute("COMMIT")
	return err
}

func (t *ConnTarget) get(ctx context.Context) (*client.Conn, error) {
	t.mu.Lock()
	if n := len(t.idle); n > 0 {
		c := t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		return c, nil
	}
	t.mu.Unlock()
	c, err := t.Dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := SetupTarget(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	return c, nil
}

// Close closes the idle connections.
func (t *ConnTarget) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.idle {
		c.Close()
	}
	t.idle = nil
}
