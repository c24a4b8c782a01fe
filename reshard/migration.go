package reshard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
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
