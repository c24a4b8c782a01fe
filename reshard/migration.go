package reshard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/engine"
	enginemysql "github.com/hamal-replication/hamal/engine/mysql"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
	"github.com/hamal-replication/hamal/tablecopy"
)

// Migration runs one plan from its current phase to complete or cancelled.
// Its state lives in Pebble under migration/<name>/; a process killed at
// any instant resumes from there when started again with the same plan.
type Migration struct {
	plan  *Plan
	log   *slog.Logger
	store *checkpoint.Store
	reg   *prometheus.Registry
	infos map[string]*tableInfo

	mu        sync.Mutex // guards st, nextSlot, channels, lastErr, verifying
	st        *State
	nextSlot  time.Time
	channels  []*runningChannel
	lastErr   string
	verifying bool

	rowsCopied   atomic.Int64
	verifiedRows atomic.Int64
	tableCopied  map[string]*atomic.Int64
	overloaded   []atomic.Bool
	throttled    atomic.Bool
	requests     chan request
	rate         tablecopy.Rate
	startedAt    time.Time // when this process opened the migration
}

type runningChannel struct {
	ch     *pipeline.Channel
	cancel context.CancelFunc
	done   chan struct{}
	// forward is a catch-up channel (a source → the targets); otherwise
	// reverse replication (a target → the sources).
	forward bool
	// from names the server the channel reads ("sources[0] 10.0.0.1:3306").
	from string
}

type request struct {
	kind  string // cutover | cancel | complete | verify
	reply chan error
}

// Open opens the migration's state dir and registers its metrics on reg.
func Open(p *Plan, log *slog.Logger, reg *prometheus.Registry) (*Migration, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store, err := checkpoint.Open(p.StateDir, checkpoint.WithLogger(log))
	if errors.Is(err, checkpoint.ErrLocked) {
		return nil, fmt.Errorf("state_dir %s is in use: another `hamal migrate start` of this plan is running (stop it first, or watch it with `hamal migrate status`): %w", p.StateDir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("state_dir %s: %w", p.StateDir, err)
	}
	m := &Migration{plan: p, log: log.With("migration", p.Name), store: store, reg: reg,
		tableCopied: map[string]*atomic.Int64{}, overloaded: make([]atomic.Bool, len(p.Sources)),
		requests: make(chan request), startedAt: time.Now().UTC()}
	for _, t := range p.Tables {
		m.tableCopied[t.Name] = &atomic.Int64{}
	}
	st, ok, err := loadState(store, p.Name)
	if err != nil {
		store.Close()
		return nil, err
	}
	if !ok {
		st = &State{Phase: PhaseNew, Segments: map[string]*Segment{}, StartedAt: time.Now().UTC()}
	} else if b, err := json.Marshal(st); err == nil {
		_ = writeMirror(p.StateDir, p.Name, b) // a state dir from before the mirror file
	}
	m.st = st
	for _, seg := range st.Segments {
		m.rowsCopied.Add(seg.Rows)
		if c := m.tableCopied[seg.Table]; c != nil {
			c.Add(seg.Rows)
		}
	}
	if reg != nil {
		if err := reg.Register(&collector{m: m}); err != nil {
			store.Close()
			return nil, err
		}
	}
	return m, nil
}

// Close releases the state dir.
func (m *Migration) Close() error { return m.store.Close() }

func (m *Migration) tableRows(name string) *atomic.Int64 { return m.tableCopied[name] }

// save persists the state, and repeats it in the mirror file status reads
// without the lock; callers hold m.mu.
func (m *Migration) save() error {
	b, err := saveState(m.store, m.plan.Name, m.st)
	if err != nil {
		return err
	}
	if err := writeMirror(m.plan.StateDir, m.plan.Name, b); err != nil {
		m.log.Warn("cannot write the status file (hamal migrate status reads it while no process runs)", "err", err)
	}
	return nil
}

func (m *Migration) phase() Phase {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Phase
}

func (m *Migration) setPhase(p Phase, record string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.Phase = p
	if record != "" {
		m.st.Record = time.Now().UTC().Format(time.RFC3339) + " " + record
	}
	return m.save()
}

// Request asks the running migration to cut over, cancel, complete or
// verify again; it returns once the request is accepted (or refused).
func (m *Migration) Request(ctx context.Context, kind string) error {
	r := request{kind: kind, reply: make(chan error, 1)}
	select {
	case m.requests <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run drives the migration until it is complete or cancelled (returns
// nil), ctx is done (returns nil; a restart resumes), or a step fails.
func (m *Migration) Run(ctx context.Context) error {
	go m.rate.Run(ctx, m.rowsCopied.Load)
	if p := m.phase(); p == PhaseComplete || p == PhaseCancelled {
		m.log.Info("migration already ended; nothing to do", "phase", p, "record", m.st.Record)
		return nil
	}
	infos, err := Preflight(ctx, m.plan)
	if err != nil {
		return err
	}
	m.infos = infos
	if m.phase() == PhaseNew {
		m.log.Info("snapshot: recording source positions and creating target tables")
		m.mu.Lock()
		err := m.snapshot(ctx)
		m.mu.Unlock()
		if err != nil {
			return err
		}
	}
	for {
		var err error
		switch m.phase() {
		case PhaseCopy:
			err = m.phaseCopy(ctx)
		case PhaseCatchup:
			err = m.phaseCatchup(ctx)
		case PhaseCutover:
			err = m.phaseCutover(ctx)
		default:
			m.stopChannels()
			m.log.Info("migration ended", "phase", m.phase(), "record", m.st.Record)
			return nil
		}
		if ctx.Err() != nil {
			m.stopChannels()
			return nil
		}
		if err != nil {
			m.stopChannels()
			return err
		}
	}
}

func (m *Migration) phaseCopy(ctx context.Context) error {
	m.log.Info("copy: starting", "segments", len(m.st.Segments))
	copyCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.runCopy(copyCtx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			m.log.Info("copy: done", "rows", m.rowsCopied.Load())
			return m.setPhase(PhaseCatchup, "")
		case r := <-m.requests:
			if r.kind != "cancel" {
				r.reply <- fmt.Errorf("%s refused: the copy is still running (cancel is possible)", r.kind)
				continue
			}
			cancel()
			<-done
			r.reply <- m.setPhase(PhaseCancelled, "cancelled during copy; the sources were never fenced; drop the target tables if unwanted")
			return nil
		case <-ctx.Done():
			cancel()
			<-done
			return nil
		}
	}
}

// phaseCatchup runs the forward channels, verifies once caught up, and
// waits for the operator.
func (m *Migration) phaseCatchup(ctx context.Context) error {
	if err := m.startForward(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	auto := m.st.Verify == nil
	m.mu.Unlock()
	if auto {
		m.startVerify(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-m.requests:
			switch r.kind {
			case "verify":
				r.reply <- m.startVerify(ctx)
			case "cancel":
				m.stopChannels()
				r.reply <- m.setPhase(PhaseCancelled, "cancelled during catch-up; the sources were never fenced; drop the target tables if unwanted")
				return nil
			case "cutover":
				err := m.fence(ctx)
				r.reply <- err
				if err == nil {
					return nil // phaseCutover takes over, channels still running
				}
			default:
				r.reply <- fmt.Errorf("%s refused: cut over first (or cancel)", r.kind)
			}
		}
	}
}

// startVerify runs Verify in the background once the forward channels
// have caught up with the sources' current positions.
func (m *Migration) startVerify(ctx context.Context) error {
	m.mu.Lock()
	if m.verifying {
		m.mu.Unlock()
		return errors.New("a verify is already running")
	}
	m.verifying = true
	m.mu.Unlock()
	go func() {
		defer func() { m.mu.Lock(); m.verifying = false; m.mu.Unlock() }()
		want, err := m.positions(ctx, false)
		if err == nil {
			err = m.waitForward(ctx, want, 0)
		}
		var rep *VerifyReport
		if err == nil {
			m.log.Info("verify: starting")
			rep, err = m.Verify(ctx)
		}
		if err != nil {
			if ctx.Err() == nil {
				m.noteError(fmt.Errorf("verify: %w", err))
			}
			return
		}
		m.log.Info("verify: done", "mismatches", rep.Mismatches, "wrong_shard", rep.WrongShard)
		m.mu.Lock()
		m.st.Verify = rep
		err = m.save()
		m.mu.Unlock()
		if err != nil {
			m.noteError(err)
		}
	}()
	return nil
}

func (m *Migration) noteError(err error) {
	m.log.Error("migration step failed", "err", err)
	m.mu.Lock()
	m.lastErr = err.Error()
	m.mu.Unlock()
}

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

// startForward starts one catch-up channel per source, from its snapshot
// position (or its checkpoint).
func (m *Migration) startForward(ctx context.Context) error {
	m.mu.Lock()
	running := len(m.channels) > 0
	m.mu.Unlock()
	if running {
		return nil
	}
	routes := map[string]Route{}
	for _, t := range m.plan.Tables {
		routes[t.Name] = Route{Rename: t.Rename, Rule: t.rule, ShardKey: t.ShardKey}
	}
	for i := range m.plan.Sources {
		name := fmt.Sprintf("migrate-%s-fwd%d", m.plan.Name, i)
		src := m.plan.sourceConfig(i, m.st.Sources[i].Snapshot)
		env := engine.Env{Channel: name, Logger: m.log}
		// No loop guard forward: the catch-up is the targets' only writer
		// until the cut-over, and reverse replication starts after it (so
		// no site, and no conflict detection, on the targets).
		from := fmt.Sprintf("sources[%d] %s", i, m.plan.Sources[i].Addr)
		err := m.startChannel(ctx, name, from, nil, true, func(ctx context.Context, resume event.Position) (source.Source, error) {
			return src.Open(ctx, env, resume)
		}, func(ctx context.Context) (sink.Sink, error) {
			return m.openSinks(ctx, name, m.plan.Targets, "targets", "", enginemysql.Conflicts{}, routes)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// startReverse starts one channel per target back to the sources: a
// router in front of one sink per source, as the catch-up has in front of
// the targets, routing each row by the table's source_rule (the sources'
// own sharding) or, with one source, to it.
func (m *Migration) startReverse(ctx context.Context) error {
	routes := map[string]Route{}
	for _, t := range m.plan.Tables {
		rename := ""
		if t.Rename != "" {
			rename = t.Name
		}
		rt := Route{Rename: rename}
		if t.sourceRule != nil {
			rt.Rule, rt.ShardKey = t.sourceRule, t.SourceRule.ShardKey
		}
		routes[t.TargetName()] = rt
	}
	for j, tg := range m.plan.Targets {
		name := fmt.Sprintf("migrate-%s-rev%d", m.plan.Name, j)
		src := m.plan.reverseSourceConfig(j, m.st.Cutover.TargetStart[j])
		env := engine.Env{Channel: name, Site: m.plan.Sites.Target, Logger: m.log}
		guard, err := loopguard.New(m.plan.Sites.Target, m.plan.Sites.Source)
		if err != nil {
			return err
		}
		from := fmt.Sprintf("targets[%d] %s", j, tg.Addr)
		err = m.startChannel(ctx, name, from, guard, false, func(ctx context.Context, resume event.Position) (source.Source, error) {
			return src.Open(ctx, env, resume)
		}, func(ctx context.Context) (sink.Sink, error) {
			return m.openSinks(ctx, name, m.plan.Sources, "sources", m.plan.Sites.Source, m.plan.Conflicts, routes)
		})
		if err != nil {
			return err
		}
	}
	m.log.Info("reverse replication running (targets → sources)")
	return nil
}

// openSinks opens one sink per server through the MySQL driver (TLS and
// conflict rules as `hamal run` builds them), behind a router.
func (m *Migration) openSinks(ctx context.Context, channel string, servers []Server, what string, site string, conflicts enginemysql.Conflicts,
	routes map[string]Route) (sink.Sink, error) {
	sinks := make([]sink.Sink, 0, len(servers))
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = fmt.Sprintf("%s[%d] %s", what, i, s.Addr)
	}
	env := engine.Env{Channel: channel, Site: site, Workers: m.plan.Apply.Workers, Logger: m.log}
	for i, s := range servers {
		sc := &enginemysql.SinkConfig{Conn: s.Conn, HamalSchema: enginemysql.DefaultHamalSchema, Conflicts: conflicts}
		sk, err := sc.Open(ctx, env)
		if err != nil {
			for _, o := range sinks {
				o.Close()
			}
			return nil, fmt.Errorf("%s: %w", names[i], err)
		}
		sinks = append(sinks, sk)
	}
	return NewRouter(sinks, routes).Named(names), nil
}

func (m *Migration) startChannel(ctx context.Context, name, from string, guard *loopguard.Guard, forward bool,
	openSource func(context.Context, event.Position) (source.Source, error), openSink func(context.Context) (sink.Sink, error)) error {
	ch, err := pipeline.New(pipeline.Options{Name: name, OpenSource: openSource, OpenSink: openSink, Store: m.store,
		Guard: guard, Workers: m.plan.Apply.Workers, Window: m.plan.Apply.daemon().Window(),
		Logger: m.log, Registerer: m.channelRegisterer()})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	rc := &runningChannel{ch: ch, cancel: cancel, done: make(chan struct{}), forward: forward, from: from}
	go func() {
		defer close(rc.done)
		if err := ch.Run(cctx); err != nil {
			m.noteError(fmt.Errorf("channel %s: %w", name, err))
		}
	}()
	m.mu.Lock()
	m.channels = append(m.channels, rc)
	m.mu.Unlock()
	return nil
}

// ResumeChannels restarts every running channel that stopped in state
// error from its checkpoint (the channel's own POST /resume), and returns
// how many it restarted.
func (m *Migration) ResumeChannels() int {
	m.mu.Lock()
	chans := append([]*runningChannel(nil), m.channels...)
	m.mu.Unlock()
	n := 0
	for _, rc := range chans {
		if rc.ch.Status().State == pipeline.StateError {
			rc.ch.Resume()
			n++
		}
	}
	if n > 0 {
		m.log.Info("resumed channels in state error", "channels", n)
	}
	return n
}

// channelRegisterer is where a channel registers its metrics: the
// migration's registry, or none (a nil interface, not a nil *Registry). A
// channel started again under the same name (after a rollback attempt)
// registers its own metrics: stopChannels closed the previous one, which
// unregistered its.
func (m *Migration) channelRegisterer() prometheus.Registerer {
	if m.reg == nil {
		return nil
	}
	return m.reg
}

// stopChannels stops every running channel and waits for it to persist.
func (m *Migration) stopChannels() {
	m.mu.Lock()
	chans := m.channels
	m.channels = nil
	m.mu.Unlock()
	for _, rc := range chans {
		rc.cancel()
	}
	for _, rc := range chans {
		<-rc.done
		rc.ch.Close() // unregisters its metrics
	}
}
