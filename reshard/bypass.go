package reshard

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
)

// bypassPrivileges let an account write through read_only: READ_ONLY
// ADMIN on MariaDB 10.11 (ALL PRIVILEGES includes it), SUPER on MySQL and
// older MariaDB.
var bypassPrivileges = []string{"READ_ONLY ADMIN", "SUPER"}

// account is one MySQL account and the bypass privileges it holds.
type account struct {
	User, Host string
	Privs      []string
}

// String is the account as SQL names it: 'user'@'host'.
func (a account) String() string { return quoteString(a.User) + "@" + quoteString(a.Host) }

// bypassAccounts lists the accounts on a server that can write through
// read_only, except locked ones, the plan's own users on that side (the
// migration writes through the fence itself) and the plan's bypass_allow.
func bypassAccounts(c *client.Conn, own []string, allow []string) ([]account, error) {
	r, err := c.Execute("SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE IN ('READ_ONLY ADMIN', 'SUPER')")
	if err != nil {
		return nil, fmt.Errorf("list accounts that can write through read_only (information_schema.USER_PRIVILEGES): %w", err)
	}
	locked := map[string]bool{}
	// MariaDB; on MySQL the query fails and no account counts as locked.
	if lr, err := c.Execute("SELECT User, Host FROM mysql.global_priv WHERE JSON_VALUE(Priv, '$.account_locked') = '1'"); err == nil {
		for i := range lr.Values {
			u, _ := lr.GetString(i, 0)
			h, _ := lr.GetString(i, 1)
			locked[u+"@"+h] = true
		}
	}
	skip := func(user, host string) bool {
		for _, o := range own {
			if user == o {
				return true
			}
		}
		for _, a := range allow {
			if a == user || a == user+"@"+host {
				return true
			}
		}
		return locked[user+"@"+host]
	}
	byName := map[string]*account{}
	for i := range r.Values {
		grantee, _ := r.GetString(i, 0)
		priv, _ := r.GetString(i, 1)
		user, host, ok := parseGrantee(grantee)
		if !ok || skip(user, host) {
			continue
		}
		a := byName[user+"@"+host]
		if a == nil {
			a = &account{User: user, Host: host}
			byName[user+"@"+host] = a
		}
		a.Privs = append(a.Privs, priv)
	}
	out := make([]account, 0, len(byName))
	for _, a := range byName {
		sort.Strings(a.Privs)
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// parseGrantee splits information_schema's 'user'@'host'.
func parseGrantee(g string) (user, host string, ok bool) {
	u, h, ok := strings.Cut(g, "'@'")
	if !ok || !strings.HasPrefix(u, "'") || !strings.HasSuffix(h, "'") {
		return "", "", false
	}
	unq := func(s string) string { return strings.ReplaceAll(s, "''", "'") }
	return unq(u[1:]), unq(h[:len(h)-1]), true
}

// bypassFix is what an operator can do about accounts that write through
// read_only.
func bypassFix(accts []account) string {
	var revokes []string
	for _, a := range accts {
		revokes = append(revokes, fmt.Sprintf("REVOKE %s ON *.* FROM %s;", strings.Join(a.Privs, ", "), a))
	}
	return strings.Join(revokes, " ") + " or set cutover.read_only_bypass: fence (the cut-over locks them and kills their sessions while the sources are fenced), or list accounts that never write application data in cutover.bypass_allow"
}

func accountList(accts []account) string {
	s := make([]string, len(accts))
	for i, a := range accts {
		s[i] = a.String() + " (" + strings.Join(a.Privs, ", ") + ")"
	}
	return strings.Join(s, ", ")
}

// ownUsers are the plan's users on the sources: the migration's own
// sessions write through the fence (reverse replication).
func (p *Plan) ownUsers() []string {
	var out []string
	for _, s := range p.Sources {
		out = append(out, s.User)
	}
	return out
}

// fenceBypass applies cutover.read_only_bypass before the sources are
// fenced: refuse names the accounts, fence locks them and kills their
// sessions (returning what it locked, per source, for unfenceBypass).
func (m *Migration) fenceBypass(ctx context.Context) ([][]string, error) {
	mode := m.plan.Cutover.ReadOnlyBypass
	locked := make([][]string, len(m.plan.Sources))
	for i, s := range m.plan.Sources {
		what := fmt.Sprintf("sources[%d]", i)
		c, err := dial(ctx, what, s)
		if err != nil {
			return locked, err
		}
		accts, err := bypassAccounts(c, m.plan.ownUsers(), m.plan.Cutover.BypassAllow)
		if err != nil {
			c.Close()
			return locked, fmt.Errorf("%s %s: %w", what, s.Addr, err)
		}
		if len(accts) == 0 {
			c.Close()
			continue
		}
		switch mode {
		case BypassWarn:
			m.log.Warn("accounts can write through read_only on a fenced source (cutover.read_only_bypass: warn)", "source", what, "accounts", accountList(accts))
		case BypassRefuse:
			c.Close()
			return locked, fmt.Errorf("cut-over refused: %s %s has accounts that can write through read_only: %s; fix: %s", what, s.Addr, accountList(accts), bypassFix(accts))
		case BypassFence:
			for _, a := range accts {
				if _, err := c.Execute("ALTER USER " + a.String() + " ACCOUNT LOCK"); err != nil {
					c.Close()
					return locked, fmt.Errorf("%s %s: lock %s for the cut-over (the migration's user needs CREATE USER): %w", what, s.Addr, a, err)
				}
				locked[i] = append(locked[i], a.String())
				if err := killSessions(c, a.User); err != nil {
					c.Close()
					return locked, fmt.Errorf("%s %s: end the sessions of %s (the migration's user needs PROCESS and CONNECTION ADMIN): %w", what, s.Addr, a, err)
				}
			}
			m.log.Info("cut-over: accounts that write through read_only locked and their sessions ended", "source", what, "accounts", accountList(accts))
		}
		c.Close()
	}
	return locked, nil
}

// killSessions ends every session of user but the caller's own.
func killSessions(c *client.Conn, user string) error {
	r, err := c.Execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = " + quoteString(user) + " AND ID <> CONNECTION_ID()")
	if err != nil {
		return err
	}
	for i := range r.Values {
		id, _ := r.GetInt(i, 0)
		if _, err := c.Execute(fmt.Sprintf("KILL CONNECTION %d", id)); err != nil && !strings.Contains(err.Error(), "Unknown thread") {
			return err
		}
	}
	return nil
}

// unfenceBypass unlocks the accounts fenceBypass locked.
func (m *Migration) unfenceBypass(ctx context.Context, locked [][]string) error {
	for i, accts := range locked {
		if len(accts) == 0 {
			continue
		}
		what := fmt.Sprintf("sources[%d]", i)
		c, err := dial(ctx, what, m.plan.Sources[i])
		if err != nil {
			return err
		}
		for _, a := range accts {
			if _, err := c.Execute("ALTER USER " + a + " ACCOUNT UNLOCK"); err != nil {
				c.Close()
				return fmt.Errorf("%s %s: unlock %s: %w", what, m.plan.Sources[i].Addr, a, err)
			}
		}
		c.Close()
		m.log.Info("accounts locked for the cut-over unlocked", "source", what, "accounts", strings.Join(accts, ", "))
	}
	return nil
}
