package pipeline

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/dag"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	"github.com/hamal-replication/hamal/relay"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

// State is a channel's lifecycle state, as /status and metrics show it.
type State string

// States.
const (
	StateStarting State = "starting"
	StateSnapshot State = "snapshot" // copying what the source holds (Options.Seed)
	StateRunning  State = "running"
	StatePaused   State = "paused"
	StateRetrying State = "retrying" // a transient error is being retried
	StateError    State = "error"    // stopped by a fatal error; see LastError
	StateStopped  State = "stopped"
)

// Positioner is an optional capability of a source: the position after the
// last Txn it returned, or its resolved start position before the first. The
// channel persists it at first start so that a crash before the first Txn
// resumes where reading began rather than at a new "current".
type Positioner interface {
	Position() event.Position
}

// Contacter is an optional capability of a source: when it last heard from
// the server (events or heartbeats), for lag while the source is quiet.
type Contacter interface {
	LastContact() time.Time
}

// Seeder is a channel's optional first phase: for a channel without a
// checkpoint it copies what the source already holds to the target, with
// the channel's sink open (its fencing lease held for the whole copy), and
// returns the position the stream starts at. The channel saves that
// position as its first checkpoint and opens the source there. A Seeder
// keeps its own progress: after an error or a restart it is called again
// (with a new sink) and resumes; once it has returned a position, the
// checkpoint wins and it is not called again. Errors marked
// retry.Transient are retried with backoff, others stop the channel in
// state error. Progress is called from any goroutine.
type Seeder interface {
	Seed(ctx context.Context, snk sink.Sink) (event.Position, error)
	Progress() *SnapshotStatus
}

// SnapshotStatus is a Seeder's progress, as /status shows it.
type SnapshotStatus struct {
	// State is "copying" or "done".
	State string `json:"state"`
	// Position is where the stream starts: the position the copy was
	// taken at (the hand-off position).
	Position      string          `json:"position"`
	StartedAt     time.Time       `json:"started_at"`
	FinishedAt    time.Time       `json:"finished_at,omitzero"`
	TablesTotal   int             `json:"tables_total"`
	TablesDone    int             `json:"tables_done"`
	RowsCopied    int64           `json:"rows_copied"`
	RowsEstimated int64           `json:"rows_estimated"`
	RowsPerSecond float64         `json:"rows_per_second"`
	ETASeconds    float64         `json:"eta_seconds"`
	Tables        []SnapshotTable `json:"tables,omitempty"`
}

// SnapshotTable is one table's copy progress.
type SnapshotTable struct {
	Table         string `json:"table"`
	RowsCopied    int64  `json:"rows_copied"`
	RowsEstimated int64  `json:"rows_estimated"`
	Done          bool   `json:"done"`
}

// ConflictCounter is an optional capability of a sink: how many conflicts
// (both sites changed a row) it has detected and resolved.
type ConflictCounter interface {
	Conflicts() uint64
}

// Options configures a Channel.
type Options struct {
	Name string
	// OpenSource opens the source at resume (nil: the source's configured
	// start).
	OpenSource func(ctx context.Context, resume event.Position) (source.Source, error)
	OpenSink   func(ctx context.Context) (sink.Sink, error)
	Store      *checkpoint.Store
	// Guard, when set, stamps each Txn's path and drops echoes (see
	// loopguard); batches are then split so each carries one path.
	Guard *loopguard.Guard

	Workers            int
	BatchTxns          int
	BatchBytes         int
	Window             dag.Options
	CheckpointInterval time.Duration
	// DrainTimeout bounds how long shutdown waits for in-flight Txns.
	DrainTimeout time.Duration
	// ExitOnError makes Run return a fatal error instead of waiting in
	// state "error" for Resume.
	ExitOnError bool
	// Relay, when set, is the relay log that OpenSource serves from
	// (relay.Relay.OpenSource); its positions go to Status and metrics.
	Relay *relay.Relay
	// Seed, when set, is the channel's first phase (see Seeder).
	Seed Seeder

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Status is a snapshot of a channel for /status and `hamal status`.
type Status struct {
	Name               string    `json:"name"`
	State              State     `json:"state"`
	SourcePosition     string    `json:"source_position"`
	CheckpointPosition string    `json:"checkpoint_position"`
	CheckpointSavedAt  time.Time `json:"checkpoint_saved_at"`
	LagSeconds         float64   `json:"lag_seconds"`
	AppliedTxns        uint64    `json:"applied_txns"`
	AppliedRows        uint64    `json:"applied_rows"`
	InFlight           int       `json:"in_flight"`
	LastError          string    `json:"last_error"`
	LastErrorAt        time.Time `json:"last_error_at,omitzero"`
	StartedAt          time.Time `json:"started_at"`
	// Relay is the relay log's state, when the channel has one.
	Relay *relay.Status `json:"relay,omitempty"`
	// Snapshot is the snapshot phase's progress, when the channel has one.
	Snapshot *SnapshotStatus `json:"snapshot,omitempty"`
	OpsStatus
}

// Channel runs one source → sink replication.
type Channel struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics

	mu         sync.Mutex
	state      State
	lastErr    string
	lastErrAt  time.Time
	sourcePos  event.Position
	tracker    *checkpoint.Tracker
	persister  *checkpoint.Persister
	savedCP    checkpoint.Checkpoint
	lastSource Contacter
	// conflicts counts what closed sinks detected; liveSink is the open
	// one, when it is a ConflictCounter. Both under mu, so the sum never
	// goes back.
	conflicts uint64
	liveSink  ConflictCounter
	paused    bool
	// pauseCh holds a channel closed when not paused. Written under mu;
	// read without it, since every worker reads it twice per batch.
	pauseCh  atomic.Pointer[chan struct{}]
	resumeCh chan struct{} // signalled by Resume in state error

	appliedTxns     atomic.Uint64
	appliedRows     atomic.Uint64
	sourceConnected atomic.Bool
	lastContact     atomic.Int64 // unix nanos of the last Txn read
	startedAt       time.Time
	busyWorkers     atomic.Int64
	ops             opsState // ops.go
}

// New builds a channel; Run starts it.
func New(opts Options) (*Channel, error) {
	if opts.Name == "" || opts.OpenSource == nil || opts.OpenSink == nil || opts.Store == nil {
		return nil, errors.New("pipeline: Name, OpenSource, OpenSink and Store are required")
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.BatchTxns <= 0 {
		opts.BatchTxns = 256
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 4 << 20
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Channel{opts: opts, log: opts.Logger.With("channel", opts.Name), state: StateStarting,
		resumeCh: make(chan struct{}, 1), startedAt: time.Now()}
	unpaused := make(chan struct{})
	close(unpaused)
	c.pauseCh.Store(&unpaused)
	m, err := newMetrics(opts.Registerer, c)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	if cp, ok, err := opts.Store.Load(opts.Name); err != nil {
		return nil, fmt.Errorf("load checkpoint of channel %s: %w", opts.Name, err)
	} else if ok {
		c.savedCP = cp
	}
	return c, nil
}

// Run replicates until ctx is done, then drains and persists. It returns nil
// after a clean stop, or the fatal error when Options.ExitOnError is set.
func (c *Channel) Run(ctx context.Context) error {
	var backoff retry.Backoff
	for {
		err := c.runSession(ctx)
		if ctx.Err() != nil {
			c.setState(StateStopped)
			c.log.Info("channel stopped", "checkpoint", c.Status().CheckpointPosition)
			return nil
		}
		if err == nil {
			continue
		}
		if retry.IsTransient(err) {
			// The source or the sink could not be opened (an outage at
			// start, e.g. after a restart): retry, as a running channel
			// does, rather than wait for an operator.
			c.metrics.errors.WithLabelValues("transient").Inc()
			c.setError(StateRetrying, err)
			if backoff.Attempts()%10 == 0 {
				c.log.Warn("cannot open the channel; retrying", "attempt", backoff.Attempts()+1, "err", err)
			}
			if backoff.Sleep(ctx) != nil {
				c.setState(StateStopped)
				return nil
			}
			continue
		}
		backoff.Reset()
		c.metrics.errors.WithLabelValues("fatal").Inc()
		c.setError(StateError, err)
		c.log.Error("channel stopped in state error; fix the cause, then POST /resume or restart", "err", err)
		if c.opts.ExitOnError {
			return err
		}
		select {
		case <-ctx.Done():
			c.setState(StateStopped)
			return nil
		case <-c.resumeCh:
			c.log.Info("resuming after error from the checkpoint")
			c.setState(StateStarting)
		}
	}
}

// session is one run from the checkpoint until a fatal error or shutdown.
type session struct {
	c         *Channel
	sched     *dag.Scheduler[*event.Txn]
	tracker   *checkpoint.Tracker
	persister *checkpoint.Persister
	sink      sink.Sink

	fatalOnce sync.Once
	fatalErr  error
	cancel    context.CancelFunc // cancels everything of the session
}

func (s *session) fail(err error) {
	s.fatalOnce.Do(func() {
		s.fatalErr = err
		s.cancel()
	})
}

func (c *Channel) runSession(ctx context.Context) error {
	c.mu.Lock()
	resume := c.savedCP.Pos
	c.mu.Unlock()

	snk, err := c.opts.OpenSink(ctx)
	if err != nil {
		return fmt.Errorf("open sink: %w", err)
	}
	defer snk.Close()
	if cc, ok := snk.(ConflictCounter); ok {
		c.mu.Lock()
		c.liveSink = cc
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.conflicts += cc.Conflicts()
			c.liveSink = nil
			c.mu.Unlock()
		}()
	}
	if resume == nil && c.opts.Seed != nil {
		c.setState(StateSnapshot)
		pos, err := c.opts.Seed.Seed(ctx, snk)
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		// The hand-off: the stream starts where the copy was taken.
		if err := c.opts.Store.Save(c.opts.Name, checkpoint.Checkpoint{Pos: pos, SavedAt: time.Now()}); err != nil {
			return fmt.Errorf("persist the snapshot's position: %w", err)
		}
		c.mu.Lock()
		c.savedCP, _, _ = c.opts.Store.Load(c.opts.Name)
		c.sourcePos = pos
		c.mu.Unlock()
		resume = pos
		c.log.Info("snapshot done; streaming from its position", "position", pos.String())
	}
	src, err := c.opts.OpenSource(ctx, resume)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	c.sourceConnected.Store(true)
	if resume == nil {
		// Pin the resolved start so a crash before the first Txn resumes
		// here, not at a later "current".
		if p, ok := src.(Positioner); ok && len(p.Position()) > 0 {
			if err := c.opts.Store.Save(c.opts.Name, checkpoint.Checkpoint{Pos: p.Position(), SavedAt: time.Now()}); err != nil {
				src.Close()
				return fmt.Errorf("persist start position: %w", err)
			}
			c.mu.Lock()
			c.savedCP, _, _ = c.opts.Store.Load(c.opts.Name)
			c.sourcePos = p.Position()
			c.mu.Unlock()
		}
	}

	sessCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tracker := checkpoint.NewTracker(0)
	s := &session{c: c, sink: snk, tracker: tracker, cancel: cancel,
		sched:     dag.New[*event.Txn](c.window()),
		persister: checkpoint.NewPersister(c.opts.Store, c.opts.Name, tracker, c.opts.CheckpointInterval, c.log)}
	c.mu.Lock()
	c.tracker, c.persister = tracker, s.persister
	c.mu.Unlock()
	c.startSessionOps(s.sched)
	c.setState(StateRunning)
	c.log.Info("channel running", "resume", resume.String())

	// Reading stops when the caller's ctx is done or the session fails.
	readCtx, stopReading := context.WithCancel(sessCtx)
	defer stopReading()
	go func() {
		select {
		case <-ctx.Done():
			stopReading()
		case <-sessCtx.Done():
		}
	}()

	var workers sync.WaitGroup
	for i := 0; i < c.opts.Workers; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			s.work(sessCtx)
		}()
	}
	persistDone := make(chan error, 1)
	persistCtx, stopPersist := context.WithCancel(sessCtx)
	defer stopPersist()
	go func() { persistDone <- s.persister.Run(persistCtx) }()
	go func() {
		// A failed periodic save stops the session.
		if err := <-persistDone; err != nil && !errors.Is(err, context.Canceled) {
			s.fail(fmt.Errorf("persist checkpoint: %w", err))
		}
		persistDone <- nil
	}()

	s.read(readCtx, src)
	c.sourceConnected.Store(false)

	// Drain: let workers finish what was read, within DrainTimeout.
	if s.fatalErr == nil {
		deadline := time.NewTimer(c.opts.DrainTimeout)
		tick := time.NewTicker(20 * time.Millisecond)
	drain:
		for {
			if n, _, _ := tracker.Pending(); n == 0 {
				break
			}
			select {
			case <-sessCtx.Done():
				break drain
			case <-deadline.C:
				n, _, _ := tracker.Pending()
				c.log.Warn("drain timed out; unapplied transactions will be read again after restart", "in_flight", n)
				break drain
			case <-tick.C:
			}
		}
		deadline.Stop()
		tick.Stop()
	}
	s.sched.Close()
	cancel()
	workers.Wait()
	<-persistDone
	flushErr := s.persister.Flush()
	c.noteSaved(s.persister)
	if s.fatalErr != nil {
		return s.fatalErr
	}
	if flushErr != nil {
		return fmt.Errorf("persist checkpoint: %w", flushErr)
	}
	return nil
}

// read pulls Txns from the source into the DAG. On a transient source error
// it waits until everything read was applied, persists, and reopens the
// source at the checkpoint.
func (s *session) read(ctx context.Context, src source.Source) {
	c := s.c
	defer func() { src.Close() }()
	var seq uint64
	var backoff retry.Backoff
	for {
		if ct, ok := src.(Contacter); ok {
			c.mu.Lock()
			c.lastSource = ct
			c.mu.Unlock()
		}
		txn, err := src.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !retry.IsTransient(err) {
				s.fail(fmt.Errorf("source at %s: %w", c.Status().SourcePosition, err))
				return
			}
			c.metrics.errors.WithLabelValues("transient").Inc()
			src.Close()
			c.sourceConnected.Store(false)
			next := s.reopen(ctx, err, &backoff)
			if next == nil {
				return // the old source is closed; closing it again is a no-op
			}
			src = next
			c.sourceConnected.Store(true)
			continue
		}
		backoff.Reset()
		seq++
		txn.Seq = seq
		c.lastContact.Store(time.Now().UnixNano())
		if err := s.tracker.Issue(checkpoint.Mark{Seq: seq, Pos: txn.Pos, CommitTime: txn.CommitTime}); err != nil {
			s.fail(err)
			return
		}
		c.mu.Lock()
		c.sourcePos = txn.Pos
		c.mu.Unlock()
		c.noteRead(seq, txn)
		skip := txn.Kind == event.KindHeartbeat || (txn.Kind == event.KindDML && len(txn.Changes) == 0)
		if !skip && c.opts.Guard != nil && !c.opts.Guard.Admit(txn) {
			skip = true
			c.metrics.loopDropped.Inc()
		}
		if skip {
			if err := s.tracker.Done(seq); err != nil {
				s.fail(err)
				return
			}
			continue
		}
		if err := s.sched.Add(ctx, seq, txn); err != nil {
			if ctx.Err() == nil && !errors.Is(err, dag.ErrClosed) {
				s.fail(err)
			}
			return
		}
	}
}

// reopen waits for in-flight Txns to be applied, persists the watermark and
// opens the source again at it, retrying with backoff. It returns nil when
// ctx is done.
func (s *session) reopen(ctx context.Context, cause error, backoff *retry.Backoff) source.Source {
	c := s.c
	c.setError(StateRetrying, fmt.Errorf("source: %w", cause))
	c.log.Warn("source stream broken; reconnecting at the checkpoint", "err", cause)
	for {
		if n, _, _ := s.tracker.Pending(); n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := s.persister.Flush(); err != nil {
		s.fail(fmt.Errorf("persist checkpoint: %w", err))
		return nil
	}
	c.noteSaved(s.persister)
	for {
		if err := backoff.Sleep(ctx); err != nil {
			return nil
		}
		c.mu.Lock()
		pos := c.savedCP.Pos
		c.mu.Unlock()
		c.metrics.retries.WithLabelValues("source").Inc()
		src, err := c.opts.OpenSource(ctx, pos)
		if err == nil {
			c.log.Info("source reconnected", "position", pos.String())
			c.setState(StateRunning)
			return src
		}
		if ctx.Err() != nil {
			return nil
		}
		c.setError(StateRetrying, fmt.Errorf("reopen source at %s: %w", pos, err))
		c.log.Warn("source reconnect failed; retrying", "attempt", backoff.Attempts(), "err", err)
	}
}

// window is the scheduler's configuration: Options.Window, with chains.
// Every sink applies a batch in its order as one target transaction (per
// loop guard path, see byPath), so a Txn may share a batch with the Txns it
// depends on: a hot row's successive changes then cost one commit, not one
// each.
func (c *Channel) window() dag.Options {
	w := c.opts.Window
	w.Chain = true
	return w
}

// work applies ready batches until the session ends.
func (s *session) work(ctx context.Context) {
	c := s.c
	txns := make([]*event.Txn, 0, c.opts.BatchTxns)
	for {
		if !c.waitUnpaused(ctx) {
			return
		}
		batch, err := s.sched.NextBatch(ctx, c.opts.BatchTxns, c.opts.BatchBytes)
		if err != nil {
			return
		}
		// A pause that came while this worker waited for work holds the
		// batch it got until resumed.
		if !c.waitUnpaused(ctx) {
			return
		}
		txns = txns[:0]
		rows := 0
		for _, e := range batch {
			txns = append(txns, e.Item)
			rows += len(e.Item.Changes)
		}
		for part := range byPath(txns) {
			start := time.Now()
			c.busyWorkers.Add(1)
			err := s.apply(ctx, part)
			c.busyWorkers.Add(-1)
			if err != nil {
				if ctx.Err() == nil {
					s.fail(err)
				}
				return
			}
			c.metrics.applied(part, time.Since(start))
		}
		for _, e := range batch {
			if err := s.sched.Done(e.Seq); err != nil {
				s.fail(err)
				return
			}
			if err := s.tracker.Done(e.Seq); err != nil {
				s.fail(err)
				return
			}
		}
		c.appliedTxns.Add(uint64(len(batch)))
		c.appliedRows.Add(uint64(rows))
		if len(txns) == 1 && txns[0].IsBarrier() {
			// A DDL is never replayed: persist right after it.
			if err := s.persister.Flush(); err != nil {
				s.fail(fmt.Errorf("persist checkpoint after %s at %s: %w", txns[0].Kind, txns[0].Pos, err))
				return
			}
			c.noteSaved(s.persister)
		}
	}
}

// byPath yields the Txns of a batch in runs of one loop guard path (all of
// them at once without a guard, or when they share it): one target
// transaction carries one origin marker. Runs keep the batch's order, since
// a chained Txn may follow its predecessor in the same batch.
func byPath(txns []*event.Txn) iter.Seq[[]*event.Txn] {
	return func(yield func([]*event.Txn) bool) {
		start := 0
		for i := 1; i <= len(txns); i++ {
			if i < len(txns) && loopguard.SamePath(txns[start], txns[i]) {
				continue
			}
			if !yield(txns[start:i]) {
				return
			}
			start = i
		}
	}
}

// apply applies one batch, retrying transient errors with backoff until
// ctx is done.
func (s *session) apply(ctx context.Context, txns []*event.Txn) error {
	c := s.c
	var backoff retry.Backoff
	for {
		err := s.sink.Apply(ctx, txns)
		if err == nil {
			if backoff.Attempts() > 0 {
				c.setState(StateRunning)
			}
			return nil
		}
		if !retry.IsTransient(err) {
			return err
		}
		c.metrics.errors.WithLabelValues("transient").Inc()
		c.metrics.retries.WithLabelValues("sink").Inc()
		c.setError(StateRetrying, fmt.Errorf("sink: %w", err))
		if backoff.Attempts()%10 == 0 {
			c.log.Warn("sink apply failed; retrying", "attempt", backoff.Attempts()+1, "first_position", txns[0].Pos.String(), "err", err)
		}
		if err := backoff.Sleep(ctx); err != nil {
			return err
		}
	}
}

func (c *Channel) noteSaved(p *checkpoint.Persister) {
	if cp, ok := p.Last(); ok {
		c.mu.Lock()
		c.savedCP = cp
		c.mu.Unlock()
		c.metrics.checkpoints.Inc()
	}
}

// conflictCount is the number of conflicts detected by every sink the
// channel has opened.
func (c *Channel) conflictCount() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.conflicts
	if c.liveSink != nil {
		n += c.liveSink.Conflicts()
	}
	return n
}

func (c *Channel) checkpointAge() time.Duration {
	c.mu.Lock()
	p := c.persister
	saved := c.savedCP.SavedAt
	c.mu.Unlock()
	if p != nil {
		if cp, ok := p.Last(); ok {
			saved = cp.SavedAt
		}
	}
	if saved.IsZero() {
		return 0
	}
	return time.Since(saved)
}

func (c *Channel) setState(st State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused && st == StateRunning {
		st = StatePaused
	}
	c.state = st
}

func (c *Channel) setError(st State, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = st
	c.lastErr = err.Error()
	c.lastErrAt = time.Now()
}

// Pause stops handing out new batches; batches being applied finish. The
// reader blocks once the window is full.
func (c *Channel) Pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		return
	}
	c.paused = true
	ch := make(chan struct{})
	c.pauseCh.Store(&ch)
	if c.state == StateRunning {
		c.state = StatePaused
	}
}

// Resume undoes Pause, and restarts a channel in state "error" from its
// checkpoint.
func (c *Channel) Resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		c.paused = false
		close(*c.pauseCh.Load())
		if c.state == StatePaused {
			c.state = StateRunning
		}
	}
	if c.state == StateError {
		select {
		case c.resumeCh <- struct{}{}:
		default:
		}
	}
}

func (c *Channel) waitUnpaused(ctx context.Context) bool {
	select {
	case <-*c.pauseCh.Load():
		return true
	case <-ctx.Done():
		return false
	}
}

// Status returns a snapshot; safe from any goroutine.
func (c *Channel) Status() Status {
	c.mu.Lock()
	st := Status{
		Name: c.opts.Name, State: c.state, SourcePosition: c.sourcePos.String(),
		CheckpointPosition: c.savedCP.Pos.String(), CheckpointSavedAt: c.savedCP.SavedAt,
		LastError: c.lastErr, LastErrorAt: c.lastErrAt, StartedAt: c.startedAt,
		AppliedTxns: c.appliedTxns.Load(), AppliedRows: c.appliedRows.Load(),
	}
	tracker, persister, contact := c.tracker, c.persister, c.lastSource
	c.mu.Unlock()
	st.OpsStatus = c.opsStatus()
	if c.opts.Relay != nil {
		rs := c.opts.Relay.Status()
		st.Relay = &rs
	}
	if c.opts.Seed != nil {
		st.Snapshot = c.opts.Seed.Progress()
	}
	if persister != nil {
		if cp, ok := persister.Last(); ok {
			st.CheckpointPosition, st.CheckpointSavedAt = cp.Pos.String(), cp.SavedAt
		}
	}
	now := time.Now()
	if tracker != nil {
		n, oldest, ok := tracker.Pending()
		st.InFlight = n
		if ok {
			st.LagSeconds = max(now.Sub(oldest).Seconds(), 0)
		}
	}
	if st.InFlight == 0 && !c.sourceConnected.Load() && st.State != StateStopped {
		// Nothing pending, but the source is not streaming: we cannot know
		// what we miss; report the time since we last heard from it.
		last := time.Unix(0, c.lastContact.Load())
		if contact != nil && contact.LastContact().After(last) {
			last = contact.LastContact()
		}
		if c.lastContact.Load() != 0 {
			st.LagSeconds = max(now.Sub(last).Seconds(), 0)
		}
	}
	return st
}
