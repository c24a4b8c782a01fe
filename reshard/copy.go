package reshard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/shardrule"
	"github.com/hamal-replication/hamal/tablecopy"
)

// snapshot records every source's position before anything is copied and
// creates the target tables that are missing. The position is the one
// engine/mysql's SnapshotPosition gives: every row the copy reads afterwards
// already holds every change up to it, and the catch-up replays every
// change after it with the sinks' replay-safe statements (DESIGN.md
// guarantee 2), so a row copied at any later moment, by any worker or
// after a restart, converges to the source's row. No lock is taken.
func (m *Migration) snapshot(ctx context.Context) error {
	m.st.Sources = make([]SourceState, len(m.plan.Sources))
	for i, s := range m.plan.Sources {
		gtid, err := m.plan.sourceConfig(i, "").SnapshotPosition(ctx, engine.Env{})
		if err != nil {
			return fmt.Errorf("sources[%d] %s: %w", i, s.Addr, err)
		}
		m.st.Sources[i] = SourceState{Addr: s.Addr, Snapshot: gtid}
	}
	if err := m.createTargets(ctx); err != nil {
		return err
	}
	if err := m.planSegments(ctx); err != nil {
		return err
	}
	m.st.Phase = PhaseCopy
	return m.save()
}

// createTargets creates each table on every target that lacks it, from
// the first source's SHOW CREATE TABLE (renamed where the plan says so).
func (m *Migration) createTargets(ctx context.Context) error {
	src, err := dial(ctx, "sources[0]", m.plan.Sources[0])
	if err != nil {
		return err
	}
	defer src.Close()
	for ti := range m.plan.Tables {
		t := &m.plan.Tables[ti]
		r, err := src.Execute("SHOW CREATE TABLE " + qualified(t.Name))
		if err != nil {
			return fmt.Errorf("sources[0]: SHOW CREATE TABLE %s: %w", t.Name, err)
		}
		ddl, _ := r.GetString(0, 1)
		_, body, ok := strings.Cut(ddl, "(")
		if !ok {
			return fmt.Errorf("sources[0]: unexpected SHOW CREATE TABLE output for %s", t.Name)
		}
		schema, _, _ := splitName(t.TargetName())
		create := "CREATE TABLE IF NOT EXISTS " + qualified(t.TargetName()) + " (" + body
		for j, tg := range m.plan.Targets {
			c, err := dial(ctx, fmt.Sprintf("targets[%d]", j), tg)
			if err != nil {
				return err
			}
			_, err = c.Execute("CREATE DATABASE IF NOT EXISTS " + quoteIdent(schema))
			if err == nil {
				_, err = c.Execute(create)
			}
			c.Close()
			if err != nil {
				return fmt.Errorf("targets[%d] %s: create table %s: %w", j, tg.Addr, t.TargetName(), err)
			}
		}
	}
	return nil
}

// planSegments splits each table on each source into key ranges (see
// tablecopy.Split): a key whose first column is an integer into
// Copy.Workers ranges of it between MIN and MAX, others into one.
func (m *Migration) planSegments(ctx context.Context) error {
	m.st.Segments = map[string]*Segment{}
	for i, s := range m.plan.Sources {
		c, err := dial(ctx, fmt.Sprintf("sources[%d]", i), s)
		if err != nil {
			return err
		}
		for _, t := range m.plan.Tables {
			segs, err := tablecopy.Split(c, m.infos[t.Name].table, i, m.plan.Copy.Workers)
			if err != nil {
				c.Close()
				return fmt.Errorf("sources[%d]: %w", i, err)
			}
			for n := range segs {
				m.st.Segments[fmt.Sprintf("%d/%s/%03d", i, t.Name, n)] = &segs[n]
			}
		}
		c.Close()
	}
	return nil
}

// runCopy copies every unfinished segment with Copy.Workers workers (the
// shared copier, tablecopy), routing each row by its table's rule and
// recording each chunk's last key once every target holds it.
func (m *Migration) runCopy(ctx context.Context) error {
	tables := map[string]*tablecopy.Table{}
	keyIdx := map[*tablecopy.Table]int{}
	rules := map[*tablecopy.Table]shardrule.Rule{}
	for _, t := range m.plan.Tables {
		info := m.infos[t.Name]
		tables[t.Name] = info.table
		keyIdx[info.table], rules[info.table] = info.keyIdx, t.rule
	}
	sources := make([]tablecopy.Source, len(m.plan.Sources))
	for i, s := range m.plan.Sources {
		what := fmt.Sprintf("sources[%d]", i)
		sources[i] = tablecopy.Source{Name: what + " " + s.Addr, Dial: func(ctx context.Context) (*client.Conn, error) { return dial(ctx, what, s) }}
	}
	targets := make([]tablecopy.Target, len(m.plan.Targets))
	for j, s := range m.plan.Targets {
		what := fmt.Sprintf("targets[%d]", j)
		tg := &tablecopy.ConnTarget{Name: what + " " + s.Addr, Dial: func(ctx context.Context) (*client.Conn, error) {
			return dial(ctx, what, s, tablecopy.LocalFiles)
		}}
		defer tg.Close()
		targets[j] = tg
	}
	m.mu.Lock()
	segs := make(map[string]tablecopy.Segment, len(m.st.Segments))
	for k, s := range m.st.Segments {
		segs[k] = *s
	}
	m.mu.Unlock()
	cp, err := tablecopy.New(tablecopy.Options{
		Sources: sources, Targets: targets, Tables: tables,
		Workers: m.plan.Copy.Workers, ChunkRows: m.plan.Copy.ChunkRows, Logger: m.log,
		Route: func(t *tablecopy.Table, row []gomysql.FieldValue) (int, error) {
			return rules[t].Shard(row[keyIdx[t]].Value())
		},
		Throttle: m.throttle,
		Save: func(key string, seg tablecopy.Segment) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			*m.st.Segments[key] = seg
			return m.save()
		},
		Copied: func(table string, rows int64) {
			m.rowsCopied.Add(rows)
			m.tableRows(table).Add(rows)
		},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go m.watchLoad(ctx)
	return cp.Run(ctx, segs)
}

// throttle waits for the row budget (max_rows_per_second) and while the
// source is overloaded (Threads_running or replica lag above the limits).
func (m *Migration) throttle(ctx context.Context, source int) error {
	for m.overloaded[source].Load() {
		m.throttled.Store(true)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	m.throttled.Store(false)
	rate := m.plan.Copy.MaxRowsPerSecond
	if rate <= 0 {
		return ctx.Err()
	}
	m.mu.Lock()
	now := time.Now()
	if m.nextSlot.Before(now) {
		m.nextSlot = now
	}
	wait := m.nextSlot.Sub(now)
	m.nextSlot = m.nextSlot.Add(time.Duration(float64(m.plan.Copy.ChunkRows) / float64(rate) * float64(time.Second)))
	m.mu.Unlock()
	if wait > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil
}

// watchLoad polls each source once a second and flags it overloaded while
// Threads_running or its replica lag is above the plan's limits.
func (m *Migration) watchLoad(ctx context.Context) {
	if m.plan.Copy.MaxThreadsRunning <= 0 && m.plan.Copy.MaxReplicaLag <= 0 {
		return
	}
	conns := make([]*client.Conn, len(m.plan.Sources))
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for i, s := range m.plan.Sources {
			if conns[i] == nil {
				c, err := dial(ctx, "sources", s)
				if err != nil {
					continue
				}
				conns[i] = c
			}
			over, err := overloaded(conns[i], m.plan.Copy)
			if err != nil {
				conns[i].Close()
				conns[i] = nil
				continue
			}
			if over != m.overloaded[i].Load() {
				m.log.Info("copy throttle", "source", s.Addr, "paused", over)
			}
			m.overloaded[i].Store(over)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func overloaded(c *client.Conn, cfg Copy) (bool, error) {
	if cfg.MaxThreadsRunning > 0 {
		r, err := c.Execute("SHOW GLOBAL STATUS LIKE 'Threads_running'")
		if err != nil {
			return false, err
		}
		if len(r.Values) > 0 {
			n, _ := r.GetInt(0, 1)
			if n > int64(cfg.MaxThreadsRunning) {
				return true, nil
			}
		}
	}
	if cfg.MaxReplicaLag > 0 {
		r, err := c.Execute("SHOW SLAVE STATUS")
		if err != nil {
			return false, err
		}
		if len(r.Values) > 0 {
			lag, err := r.GetIntByName(0, "Seconds_Behind_Master")
			if err == nil && time.Duration(lag)*time.Second > cfg.MaxReplicaLag {
				return true, nil
			}
		}
	}
	return false, nil
}
