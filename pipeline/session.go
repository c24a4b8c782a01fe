package pipeline

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/dag"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

// session is the data path of one run from the checkpoint until a fatal
// error or shutdown: one reader goroutine pulls Txns from the source,
// numbers them (seq, dense from 1) and issues them to the tracker and the
// DAG; Workers goroutines take ready batches, apply them to the sink and
// mark them done; the persister saves the tracker's watermark. The
// session owns its sink, source, DAG, tracker and persister, and closes
// them before runSession returns.
type session struct {
	opts      *Options
	log       *slog.Logger
	life      *supervisor
	obs       *observer
	sched     *dag.Scheduler[*event.Txn]
	tracker   *checkpoint.Tracker
	persister *checkpoint.Persister
	sink      sink.Sink
	// resume is the checkpoint the session started from: where its
	// source is (re)opened until the persister saved a newer one.
	resume checkpoint.Checkpoint

	failMu   sync.Mutex
	fatalErr error
	cancel   context.CancelFunc // cancels everything of the session
}

// fail records the session's first fatal error and ends the session.
func (s *session) fail(err error) {
	s.failMu.Lock()
	first := s.fatalErr == nil
	if first {
		s.fatalErr = err
	}
	s.failMu.Unlock()
	if first {
		s.cancel()
	}
}

func (s *session) failed() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.fatalErr
}

// checkpoint is the session's durable checkpoint: the persister's last
// save, else the one it started from.
func (s *session) checkpoint() checkpoint.Checkpoint {
	if cp, ok := s.persister.Last(); ok {
		return cp
	}
	return s.resume
}

// seed runs the snapshot phase (Options.Seed) with the session's sink and
// saves the position it returns as the channel's first checkpoint: the
// hand-off, after which the stream starts there.
func (c *Channel) seed(ctx context.Context, snk sink.Sink) (checkpoint.Checkpoint, error) {
	c.life.setState(StateSnapshot)
	pos, err := c.opts.Seed.Seed(ctx, snk)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("snapshot: %w", err)
	}
	if err := c.opts.Store.Save(c.opts.Name, checkpoint.Checkpoint{Pos: pos, SavedAt: time.Now()}); err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("persist the snapshot's position: %w", err)
	}
	cp, _, err := c.opts.Store.Load(c.opts.Name)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("load checkpoint: %w", err)
	}
	c.log.Info("snapshot done; streaming from its position", "position", pos.String())
	return cp, nil
}

// runSession runs one session. It returns nil after shutdown (ctx done)
// with everything drained and persisted, a transient error when the sink
// or the source cannot be opened, and the fatal error that ended it
// otherwise.
func (c *Channel) runSession(ctx context.Context) error {
	resume, _, err := c.opts.Store.Load(c.opts.Name)
	if err != nil {
		return fmt.Errorf("load checkpoint: %w", err)
	}
	snk, err := c.opts.OpenSink(ctx)
	if err != nil {
		return fmt.Errorf("open sink: %w", err)
	}
	defer snk.Close()
	defer c.obs.sinkOpened(snk)()
	if resume.Pos == nil && c.opts.Seed != nil {
		if resume, err = c.seed(ctx, snk); err != nil {
			return err
		}
	}
	src, err := c.opts.OpenSource(ctx, resume.Pos)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	if resume.Pos == nil {
		// Pin the resolved start so a crash before the first Txn resumes
		// here, not at a later "current".
		if p, ok := src.(Positioner); ok && len(p.Position()) > 0 {
			if err := c.opts.Store.Save(c.opts.Name, checkpoint.Checkpoint{Pos: p.Position(), SavedAt: time.Now()}); err != nil {
				src.Close()
				return fmt.Errorf("persist start position: %w", err)
			}
			if resume, _, err = c.opts.Store.Load(c.opts.Name); err != nil {
				src.Close()
				return fmt.Errorf("load checkpoint: %w", err)
			}
		}
	}

	sessCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tracker := checkpoint.NewTracker(0)
	s := &session{opts: &c.opts, log: c.log, life: c.life, obs: c.obs, sink: snk, tracker: tracker, cancel: cancel,
		resume:    resume,
		sched:     dag.New[*event.Txn](c.window()),
		persister: checkpoint.NewPersister(c.opts.Store, c.opts.Name, tracker, c.opts.CheckpointInterval, c.log)}
	if w, ok := snk.(CheckpointWatcher); ok {
		s.persister.OnSave(w.Persisted)
	}
	c.obs.sessionStarted(resume, tracker, s.persister, s.sched)
	c.obs.sourceOpened(src)
	if c.life.recovered() {
		c.obs.countResolved("open")
	}
	c.log.Info("channel running", "resume", resume.Pos.String())

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
	c.obs.sourceClosed()

	// Drain: let workers finish what was read, within DrainTimeout.
	if s.failed() == nil {
		deadline := time.NewTimer(c.opts.DrainTimeout)
		select {
		case <-tracker.Drained():
		case <-sessCtx.Done():
		case <-deadline.C:
			n, _, _ := tracker.Pending()
			c.log.Warn("drain timed out; unapplied transactions will be read again after restart", "in_flight", n)
		}
		deadline.Stop()
	}
	s.sched.Close()
	cancel()
	workers.Wait()
	<-persistDone
	flushErr := s.persister.Flush()
	c.obs.saved(s.persister)
	if err := s.failed(); err != nil {
		return err
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
	defer func() { src.Close() }()
	var seq uint64
	var backoff retry.Backoff
	for {
		txn, err := src.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !retry.IsTransient(err) {
				s.fail(fmt.Errorf("source at %s: %w", s.obs.sourcePosition(), err))
				return
			}
			s.obs.countError("transient")
			src.Close()
			s.obs.sourceClosed()
			next := s.reopen(ctx, err, &backoff)
			if next == nil {
				return // the old source is closed; closing it again is a no-op
			}
			src = next
			s.obs.sourceOpened(src)
			continue
		}
		backoff.Reset()
		seq++
		txn.Seq = seq
		if err := s.tracker.Issue(checkpoint.Mark{Seq: seq, Pos: txn.Pos, CommitTime: txn.CommitTime}); err != nil {
			s.fail(err)
			return
		}
		s.obs.read(seq, txn)
		skip := txn.Kind == event.KindHeartbeat || (txn.Kind == event.KindDML && len(txn.Changes) == 0)
		if !skip && s.opts.Guard != nil && !s.opts.Guard.Admit(txn) {
			skip = true
			s.obs.loopDropped()
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
	s.life.setError(StateRetrying, fmt.Errorf("source: %w", cause))
	s.log.Warn("source stream broken; reconnecting at the checkpoint", "err", cause)
	select {
	case <-s.tracker.Drained():
	case <-ctx.Done():
		return nil
	}
	if err := s.persister.Flush(); err != nil {
		s.fail(fmt.Errorf("persist checkpoint: %w", err))
		return nil
	}
	s.obs.saved(s.persister)
	for {
		if err := backoff.Sleep(ctx); err != nil {
			return nil
		}
		pos := s.checkpoint().Pos
		s.obs.countRetry("source")
		src, err := s.opts.OpenSource(ctx, pos)
		if err == nil {
			s.log.Info("source reconnected", "position", pos.String())
			if s.life.recovered() {
				s.obs.countResolved("source")
			}
			return src
		}
		if ctx.Err() != nil {
			return nil
		}
		s.life.setError(StateRetrying, fmt.Errorf("reopen source at %s: %w", pos, err))
		s.log.Warn("source reconnect failed; retrying", "attempt", backoff.Attempts(), "err", err)
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
	txns := make([]*event.Txn, 0, s.opts.BatchTxns)
	for {
		if !s.life.waitUnpaused(ctx) {
			return
		}
		batch, err := s.sched.NextBatch(ctx, s.opts.BatchTxns, s.opts.BatchBytes)
		if err != nil {
			return
		}
		// A pause that came while this worker waited for work holds the
		// batch it got until resumed.
		if !s.life.waitUnpaused(ctx) {
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
			s.obs.workerBusy(1)
			err := s.apply(ctx, part)
			s.obs.workerBusy(-1)
			if err != nil {
				if ctx.Err() == nil {
					s.fail(err)
				}
				return
			}
			s.obs.applied(part, time.Since(start))
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
		s.obs.appliedBatch(len(batch), rows)
		if len(txns) == 1 && txns[0].IsBarrier() {
			// A DDL is never replayed: persist right after it.
			if err := s.persister.Flush(); err != nil {
				s.fail(fmt.Errorf("persist checkpoint after %s at %s: %w", txns[0].Kind, txns[0].Pos, err))
				return
			}
			s.obs.saved(s.persister)
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
	var backoff retry.Backoff
	for {
		err := s.sink.Apply(ctx, txns)
		if err == nil {
			if backoff.Attempts() > 0 {
				// The retried batch went through (a deadlock, a lock wait
				// timeout): a resolved event, not the channel's error.
				if s.life.recovered() {
					s.obs.countResolved("sink")
				}
				s.log.Info("sink apply succeeded after retrying", "attempts", backoff.Attempts()+1, "first_position", txns[0].Pos.String())
			}
			return nil
		}
		if !retry.IsTransient(err) {
			return err
		}
		s.obs.countError("transient")
		s.obs.countRetry("sink")
		s.life.setError(StateRetrying, fmt.Errorf("sink: %w", err))
		if backoff.Attempts()%10 == 0 {
			s.log.Warn("sink apply failed; retrying", "attempt", backoff.Attempts()+1, "first_position", txns[0].Pos.String(), "err", err)
		}
		if err := backoff.Sleep(ctx); err != nil {
			return err
		}
	}
}
