package checkpoint

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// defaultInterval is the save interval NewPersister uses for interval <= 0.
const defaultInterval = time.Second

// Persister saves the watermarks of one channel's Tracker to a Store: on an
// interval (Run), and on demand (Flush, called after each barrier or DDL and
// at shutdown). It never saves a watermark older than the last one it saved,
// and saves nothing when the watermark did not move.
//
// Flush, Last and Run may be called concurrently; saves are serialised.
// Last reports only saves made by this Persister: a checkpoint loaded from an
// earlier run is not compared with, because seq numbering restarts with each
// process run.
type Persister struct {
	store    *Store
	channel  string
	tracker  *Tracker
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time // clock for SavedAt

	saveMu  sync.Mutex // serialises Flush
	mu      sync.Mutex // guards last, hasLast and saves, so Last does not wait on fsync
	last    Checkpoint
	hasLast bool
	saves   uint64

	onSave func(seq uint64) // see OnSave
}

// OnSave sets a function called with the seq of every checkpoint saved,
// after it is durable, from the goroutine that saved it. Set it before Run.
func (p *Persister) OnSave(f func(seq uint64)) { p.onSave = f }

// NewPersister returns a Persister that saves tracker's watermark as the
// checkpoint of channel in store every interval while Run runs (interval <= 0
// means one second). log may be nil.
func NewPersister(store *Store, channel string, tracker *Tracker, interval time.Duration, log *slog.Logger) *Persister {
	if interval <= 0 {
		interval = defaultInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Persister{
		store:    store,
		channel:  channel,
		tracker:  tracker,
		interval: interval,
		log:      log.With("channel", channel),
		now:      time.Now,
	}
}

// Run saves the watermark every interval until ctx is done, then flushes a
// last time and returns ctx.Err(). It returns at once, with the Save error,
// when a save fails (the final one included); the caller then stops the
// channel in state error, and the stored checkpoint stays where it was.
func (p *Persister) Run(ctx context.Context) error {
	ticker := time.NewTicker(p.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := p.Flush(); err != nil {
				return fmt.Errorf("final flush: %w", err)
			}
			return ctx.Err()
		case <-ticker.C:
			if err := p.Flush(); err != nil {
				return err
			}
		}
	}
}

// Flush saves the current watermark now, unless it is not beyond the last
// saved one. It returns when the checkpoint is durable.
func (p *Persister) Flush() error {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	mark, ok := p.tracker.Watermark()
	last, hasLast := p.Last()
	if !ok || (hasLast && mark.Seq <= last.Seq) {
		return nil
	}
	c := Checkpoint{
		Seq:        mark.Seq,
		Pos:        mark.Pos,
		CommitTime: mark.CommitTime,
		SavedAt:    p.now(),
	}
	if err := p.store.Save(p.channel, c); err != nil {
		p.log.Error("checkpoint save failed", "seq", c.Seq, "pos", c.Pos.String(), "error", err)
		return fmt.Errorf("persist checkpoint of %s at seq %d: %w", p.channel, c.Seq, err)
	}
	p.mu.Lock()
	p.last, p.hasLast = c, true
	p.saves++
	p.mu.Unlock()
	if p.onSave != nil {
		p.onSave(c.Seq)
	}
	p.log.Debug("checkpoint saved", "seq", c.Seq, "pos", c.Pos.String())
	return nil
}

// Saves returns how many checkpoints this Persister saved (Run's and
// Flush's), for a metric.
func (p *Persister) Saves() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.saves
}

// Last returns the last checkpoint this Persister saved; ok is false before
// the first successful save.
func (p *Persister) Last() (c Checkpoint, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.hasLast
}
