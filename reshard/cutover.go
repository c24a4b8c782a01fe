package reshard

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	enginemysql "github.com/hamal-replication/hamal/engine/mysql"
	"github.com/hamal-replication/hamal/event"
)

// The cutover phase: fencing the sources, staggering AUTO_INCREMENT,
// waiting for the channels to reach the fenced positions, switching, and
// rolling back.

// fence stops writes on every source and records the sources' final
// positions.
func (m *Migration) fence(ctx context.Context) error {
	if !m.plan.reversible() {
		m.log.Warn("cut-over of a merge without tables[].source_rule: reverse replication cannot route rows back to the sources, so rollback after cut-over is not available")
	}
	locked, err := m.fenceBypass(ctx)
	if err != nil {
		if uerr := m.unfenceBypass(ctx, locked); uerr != nil {
			m.log.Error("cannot unlock accounts locked for the cut-over", "err", uerr)
		}
		return err
	}
	undo := func() {
		_ = m.setReadOnly(ctx, m.plan.Sources, "sources", false)
		if uerr := m.unfenceBypass(ctx, locked); uerr != nil {
			m.log.Error("cannot unlock accounts locked for the cut-over", "err", uerr)
		}
	}
	if err := m.setReadOnly(ctx, m.plan.Sources, "sources", true); err != nil {
		undo()
		return err
	}
	final, err := m.positions(ctx, false)
	if err != nil {
		undo()
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.st.Sources {
		m.st.Sources[i].Final = final[i]
	}
	m.st.Phase = PhaseCutover
	m.st.Cutover = CutoverState{Step: StepFenced, FencedAt: time.Now().UTC(), Locked: locked}
	m.log.Info("cut-over: sources fenced", "final", final)
	return m.save()
}

// staggerAutoIncrement gives each target its own AUTO_INCREMENT values
// (auto_increment.stagger): increment N, offset index+1, and every table's
// counter on every target past the largest value any target holds (each
// target's own counter only passed its own rows, so an id another target
// holds could come next). New rows on different targets then never take
// the same value.
func (m *Migration) staggerAutoIncrement(ctx context.Context) error {
	ai := m.plan.AutoIncrement
	if !ai.Stagger {
		return nil
	}
	conns := make([]*client.Conn, len(m.plan.Targets))
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for j, tg := range m.plan.Targets {
		c, err := dial(ctx, fmt.Sprintf("targets[%d]", j), tg)
		if err != nil {
			return err
		}
		conns[j] = c
	}
	for _, t := range m.plan.Tables {
		schema, name, _ := splitName(t.TargetName())
		col, err := queryString(conns[0], "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "+quoteString(schema)+
			" AND TABLE_NAME = "+quoteString(name)+" AND EXTRA LIKE '%auto_increment%'")
		if err != nil {
			return fmt.Errorf("targets[0]: read the AUTO_INCREMENT column of %s: %w", t.TargetName(), err)
		}
		if col == "" {
			continue
		}
		var next int64 = 1
		for j, c := range conns {
			r, err := c.Execute("SELECT IFNULL(MAX(" + quoteIdent(col) + "), 0) FROM " + qualified(t.TargetName()))
			if err != nil {
				return fmt.Errorf("targets[%d]: largest %s.%s: %w", j, t.TargetName(), col, err)
			}
			n, _ := r.GetInt(0, 0)
			next = max(next, n+1)
		}
		for j, c := range conns {
			if _, err := c.Execute(fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d", qualified(t.TargetName()), next)); err != nil {
				return fmt.Errorf("targets[%d]: move the AUTO_INCREMENT counter of %s past %d (the user needs ALTER): %w", j, t.TargetName(), next-1, err)
			}
		}
	}
	for j, c := range conns {
		q := fmt.Sprintf("SET GLOBAL auto_increment_increment=%d, auto_increment_offset=%d", ai.Increment, j+1)
		if _, err := c.Execute(q); err != nil {
			return fmt.Errorf("targets[%d] %s: %s (auto_increment.stagger; the user needs SUPER): %w", j, m.plan.Targets[j].Addr, q, err)
		}
	}
	m.log.Info("cut-over: AUTO_INCREMENT staggered on the targets (put the same in each target's server config)", "increment", ai.Increment)
	return nil
}

// unfenceSources lifts the sources' fence: read_only (or the hook) and
// the accounts the cut-over locked.
func (m *Migration) unfenceSources(ctx context.Context) error {
	if err := m.setReadOnly(ctx, m.plan.Sources, "sources", false); err != nil {
		return err
	}
	m.mu.Lock()
	locked := m.st.Cutover.Locked
	m.mu.Unlock()
	return m.unfenceBypass(ctx, locked)
}

// setReadOnly fences (or unfences) servers: read_only, or the plan's hook
// for the sources.
func (m *Migration) setReadOnly(ctx context.Context, servers []Server, what string, on bool) error {
	if what == "sources" && m.plan.Cutover.Fence == "hook" {
		hook := m.plan.Cutover.UnfenceHook
		if on {
			hook = m.plan.Cutover.FenceHook
		}
		out, err := exec.CommandContext(ctx, "/bin/sh", "-c", hook).CombinedOutput()
		if err != nil {
			return fmt.Errorf("cutover hook %q: %w: %s", hook, err, out)
		}
		return nil
	}
	v := "0"
	if on {
		v = "1"
	}
	for i, s := range servers {
		c, err := dial(ctx, fmt.Sprintf("%s[%d]", what, i), s)
		if err != nil {
			return err
		}
		_, err = c.Execute("SET GLOBAL read_only=" + v)
		c.Close()
		if err != nil {
			return fmt.Errorf("%s[%d] %s: SET GLOBAL read_only=%s (the user needs SUPER or READ_ONLY ADMIN): %w", what, i, s.Addr, v, err)
		}
	}
	return nil
}

// positions reads @@gtid_binlog_pos of every source (or target).
func (m *Migration) positions(ctx context.Context, targets bool) ([]string, error) {
	servers, what := m.plan.Sources, "sources"
	if targets {
		servers, what = m.plan.Targets, "targets"
	}
	out := make([]string, len(servers))
	for i, s := range servers {
		c, err := dial(ctx, fmt.Sprintf("%s[%d]", what, i), s)
		if err != nil {
			return nil, err
		}
		out[i], err = queryString(c, "SELECT @@gtid_binlog_pos")
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("%s[%d] %s: read @@gtid_binlog_pos: %w", what, i, s.Addr, err)
		}
	}
	return out, nil
}

// caughtUp reports whether every running channel's checkpoint holds want
// (one GTID set per channel, in channel order).
func (m *Migration) caughtUp(want []string) bool {
	m.mu.Lock()
	chans := append([]*runningChannel(nil), m.channels...)
	m.mu.Unlock()
	if len(chans) != len(want) {
		return false
	}
	for i, rc := range chans {
		cp := rc.ch.Status().CheckpointPosition
		if cp == "" {
			return false
		}
		gtid, err := enginemysql.GTID(event.Position(cp))
		if err != nil || !gtidReached(gtid, want[i]) {
			return false
		}
	}
	return true
}

// waitForward waits until the running channels reach want (timeout 0:
// until ctx is done).
func (m *Migration) waitForward(ctx context.Context, want []string, timeout time.Duration) error {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !m.caughtUp(want) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("channels did not reach %v within %s", want, timeout)
		case <-tick.C:
		}
	}
	return nil
}

func (m *Migration) phaseCutover(ctx context.Context) error {
	m.mu.Lock()
	step := m.st.Cutover.Step
	m.mu.Unlock()
	if step == StepFenced {
		if err := m.startForward(ctx); err != nil {
			return err
		}
		want := make([]string, len(m.st.Sources))
		for i, s := range m.st.Sources {
			want[i] = s.Final
		}
		waitCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- m.waitForward(waitCtx, want, m.plan.Cutover.Timeout) }()
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				cancel()
				return nil
			case err := <-done:
				cancel()
				if err != nil {
					// Never stay stuck fenced: unfence and go back.
					m.noteError(fmt.Errorf("cut-over: %w; sources unfenced, back to catch-up", err))
					if uerr := m.unfenceSources(ctx); uerr != nil {
						return uerr
					}
					m.mu.Lock()
					m.st.Phase, m.st.Cutover = PhaseCatchup, CutoverState{}
					err = m.save()
					m.mu.Unlock()
					return err
				}
				waiting = false
			case r := <-m.requests:
				if r.kind != "cancel" {
					r.reply <- fmt.Errorf("%s refused: the cut-over is waiting for the targets", r.kind)
					continue
				}
				cancel()
				<-done
				m.stopChannels()
				err := m.unfenceSources(ctx)
				if err == nil {
					err = m.setPhase(PhaseCancelled, "cancelled during cut-over; sources unfenced and still the primary")
				}
				r.reply <- err
				return err
			}
		}
		m.stopChannels()
		if err := m.staggerAutoIncrement(ctx); err != nil {
			return err
		}
		tpos, err := m.positions(ctx, true)
		if err != nil {
			return err
		}
		m.mu.Lock()
		m.st.Cutover.Step, m.st.Cutover.TargetStart, m.st.Cutover.SwitchedAt = StepSwitched, tpos, time.Now().UTC()
		err = m.save()
		m.mu.Unlock()
		if err != nil {
			return err
		}
		m.log.Info("cut-over: targets caught up; writes may go to the targets now", "targets", tpos)
	}
	if m.plan.reversible() {
		if err := m.startReverse(ctx); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-m.requests:
			switch r.kind {
			case "complete":
				m.stopChannels()
				record := "complete: the targets are the primary; the sources stay fenced (read_only) and may be retired"
				m.mu.Lock()
				var locked []string
				for _, l := range m.st.Cutover.Locked {
					locked = append(locked, l...)
				}
				m.mu.Unlock()
				if len(locked) > 0 {
					record += "; the accounts locked for the cut-over stay locked on the sources: " + strings.Join(locked, ", ")
				}
				r.reply <- m.setPhase(PhaseComplete, record)
				return nil
			case "cancel":
				err := m.rollback(ctx)
				r.reply <- err
				if err == nil {
					return nil
				}
			default:
				r.reply <- fmt.Errorf("%s refused: the cut-over is done (complete or cancel)", r.kind)
			}
		}
	}
}

// rollback undoes a finished cut-over: fence the targets, let reverse
// replication bring the sources up to them, stop it, unfence the sources.
func (m *Migration) rollback(ctx context.Context) error {
	if !m.plan.reversible() {
		return errors.New("rollback needs reverse replication, which a merge has only when every table has a source_rule (how the sources are sharded): complete the migration, or move the rows back by hand")
	}
	if err := m.setReadOnly(ctx, m.plan.Targets, "targets", true); err != nil {
		return err
	}
	want, err := m.positions(ctx, true)
	if err == nil {
		err = m.waitForward(ctx, want, m.plan.Cutover.Timeout)
	}
	if err != nil {
		_ = m.setReadOnly(ctx, m.plan.Targets, "targets", false)
		return fmt.Errorf("rollback: %w (targets unfenced again; retry cancel)", err)
	}
	m.stopChannels()
	if err := m.unfenceSources(ctx); err != nil {
		return err
	}
	return m.setPhase(PhaseCancelled, "rolled back after cut-over: reverse replication brought the sources up to the targets; the sources are the primary again and the targets are read_only")
}
