package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/dag"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
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

// ConflictCounter is an optional capability of a sink: how many conflicts
// (both sites changed a row) it has detected and resolved.
type ConflictCounter interface {
	Conflicts() uint64
}

// ForeignWriteCounter is an optional capability of a sink with an
// ownership guard: how many changes it applied whose origin is not their
// owner's home site, per "schema.table".
type ForeignWriteCounter interface {
	ForeignWrites() map[string]uint64
}

// UniqueReplacementCounter is an optional capability of a sink that
// replaces rows by key (the MySQL sink's REPLACE): how many target rows it
// removed, per "schema.table", for holding a unique value of an incoming
// row with another row key (rows only the target had).
type UniqueReplacementCounter interface {
	UniqueReplacements() map[string]uint64
}

// CheckpointWatcher is an optional capability of a sink that fences
// replays itself (the Kafka sink's exactly-once mode): it is told the seq
// of every checkpoint the session saved, after the save is durable, so it
// can forget what no restart will read again. Persisted is called from
// the persister's goroutine, concurrently with Apply, and must not block
// on the target.
type CheckpointWatcher interface {
	Persisted(seq uint64)
}

// RelayLog is the relay log a channel reads through, as the observer
// reports it (package relay implements it; the pipeline does not import
// it). Status is called from any goroutine, at every /status request and
// every scrape: it returns a snapshot and must not wait for disk or
// network.
type RelayLog interface {
	Status() RelayStatus
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
// state error. Progress is called from any goroutine, at every /status
// request and scrape: it returns a snapshot (nil before the phase began)
// and must not wait for disk or network.
type Seeder interface {
	Seed(ctx context.Context, snk sink.Sink) (event.Position, error)
	Progress() *SnapshotStatus
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
	// Relay, when set, is the relay log that OpenSource serves from; its
	// status goes to Status.Relay and the hamal_relay_* gauges; nil: no relay.
	Relay RelayLog
	// Seed, when set, is the channel's first phase (see Seeder); its
	// progress goes to Status.Snapshot and the hamal_snapshot_* gauges.
	Seed Seeder

	Logger *slog.Logger
	// Registerer receives the channel's metrics (labelled channel=<Name>)
	// in New; Close unregisters them. nil: no metrics.
	Registerer prometheus.Registerer
}

// Channel runs one source → sink replication. It is three parts with one
// job each:
//
//   - the supervisor (supervisor.go): Run's loop over sessions, the State
//     machine, Pause and Resume, retries of a channel that cannot open;
//   - a session (session.go): the data path of one run from the
//     checkpoint (reader, DAG, workers, persister) until shutdown or a
//     fatal error;
//   - the observer (observer.go, metrics.go): the read-only view (Status,
//     lag, heartbeats, conflicts, the relay's status) and the channel's
//     Prometheus metrics. The session and the supervisor tell it what
//     happened; it never acts on the data path.
//
// Run is called once; Status, Pause and Resume from any goroutine, also
// before Run and after it returned. Close, after Run returned, unregisters
// the metrics.
type Channel struct {
	opts Options
	log  *slog.Logger
	life *supervisor
	obs  *observer
}

// New builds a channel and registers its metrics; Run starts it. A
// Registerer that already holds a channel of the same name (one that was
// not closed) is an error.
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
	cp, _, err := opts.Store.Load(opts.Name)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint of channel %s: %w", opts.Name, err)
	}
	life := newSupervisor()
	obs := newObserver(opts.Name, opts.Workers, opts.Relay, life, cp)
	obs.seed = opts.Seed
	if err := obs.register(opts.Registerer); err != nil {
		return nil, err
	}
	return &Channel{opts: opts, log: opts.Logger.With("channel", opts.Name), life: life, obs: obs}, nil
}

// Status returns a snapshot; safe from any goroutine.
func (c *Channel) Status() Status { return c.obs.status() }

// Pause stops handing out new batches; batches being applied finish. The
// reader blocks once the window is full.
func (c *Channel) Pause() { c.life.pause() }

// Resume undoes Pause, and restarts a channel in state "error" from its
// checkpoint.
func (c *Channel) Resume() { c.life.resume() }

// Close unregisters the channel's metrics, so that a channel created
// again under the same name on the same Registerer serves its own numbers
// and none of this one's. Call it once Run has returned; Status keeps
// working. It is safe to call more than once.
func (c *Channel) Close() error {
	c.obs.unregister()
	return nil
}
