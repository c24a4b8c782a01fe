package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
	"github.com/hamal-replication/hamal/tablecopy"
)

// Target is what the snapshot needs of the channel's sink (sink/mysql's
// *Sink): the schema goes through Apply as DDL Txns, the rows through
// Copy, both fenced by the sink's lease and marked with the channel's
// loop guard path.
type Target interface {
	sink.Sink
	Copy(ctx context.Context, table string, path []string, stmts []tablecopy.Statement) error
}

// Config configures a channel's snapshot.
type Config struct {
	// Channel names the channel (its state key, snapshot/<channel>).
	Channel string
	// Source is the channel's source: where to connect, and the filters
	// that choose the tables (Tables, Exclude, HamalSchema).
	Source srcmysql.Config
	// Target opens a plain connection to the target, for reading its
	// schema (never for writing: writes go through the sink).
	Target func(ctx context.Context) (*client.Conn, error)
	// CreateTables creates target schemas and tables the target lacks
	// from the source's definitions (sink.create_tables).
	CreateTables bool
	// Workers and ChunkRows tune the copy (tablecopy.Options).
	Workers   int
	ChunkRows int
	// Path is the loop guard path of the copied rows ([source site, sink
	// site]); nil without sites.
	Path []string
	// Store is the channel's checkpoint store.
	Store  *checkpoint.Store
	Logger *slog.Logger
	// ProgressEvery is how often a progress line is logged while copying
	// (default 10 s).
	ProgressEvery time.Duration
}

// Snapshot is a channel's snapshot phase, a pipeline.Seeder.
type Snapshot struct {
	cfg Config
	log *slog.Logger

	saveMu    sync.Mutex // orders the writes of the state
	mu        sync.Mutex // guards the fields below
	st        *state
	estimates map[string]int64
	seeding   bool
	startedAt time.Time
	rate      tablecopy.Rate
}

var _ pipeline.Seeder = (*Snapshot)(nil)

// New returns the snapshot phase of a channel.
func New(cfg Config) (*Snapshot, error) {
	if cfg.Channel == "" || cfg.Store == nil || cfg.Target == nil {
		return nil, errors.New("snapshot: Channel, Store and Target are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Snapshot{cfg: cfg, log: log.With("component", "snapshot"), estimates: map[string]int64{}}
	if st, ok, err := loadState(cfg.Store, cfg.Channel); err != nil {
		return nil, err
	} else if ok {
		s.st = st
	}
	return s, nil
}

// Seed copies what the source holds (or resumes the copy) and returns the
// snapshot position, where the stream starts. See the package
// documentation.
func (s *Snapshot) Seed(ctx context.Context, snk sink.Sink) (event.Position, error) {
	s.mu.Lock()
	st := s.st
	s.seeding = true
	if s.startedAt.IsZero() {
		s.startedAt = time.Now()
	}
	s.mu.Unlock()
	if st != nil && st.Done {
		return srcmysql.EncodePosition(st.Position), nil
	}
	tgt, ok := snk.(Target)
	if !ok {
		return nil, fmt.Errorf("source.start snapshot copies rows into a MySQL/MariaDB target; this sink (%T) cannot take them: start a channel to it from a position instead", snk)
	}
	if st == nil {
		var err error
		if st, err = s.begin(ctx); err != nil {
			return nil, classify(err)
		}
	} else {
		s.log.Info("snapshot: resuming the copy; the stream will still start at the snapshot position",
			"position", st.Position.String(), "rows_copied", rowsOf(st))
	}
	progressCtx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	go s.rate.Run(progressCtx, func() int64 { return s.rowsCopied() })
	go s.logProgress(progressCtx)

	if err := s.schema(ctx, tgt, st); err != nil {
		return nil, classify(err)
	}
	if err := s.copy(ctx, tgt, st); err != nil {
		return nil, classify(err)
	}
	end, err := srcmysql.SnapshotPosition(ctx, s.cfg.Source)
	if err != nil {
		return nil, classify(err)
	}
	s.saveMu.Lock()
	s.mu.Lock()
	st.Done, st.FinishedAt, st.ConsistentAt = true, time.Now().UTC(), &end
	took := time.Since(s.startedAt)
	s.mu.Unlock()
	err = saveState(s.cfg.Store, s.cfg.Channel, st)
	s.saveMu.Unlock()
	if err != nil {
		return nil, err
	}
	rows := rowsOf(st)
	s.log.Info("snapshot: copy done; the stream starts at the snapshot position", "position", st.Position.String(),
		"tables", len(st.Tables), "rows", rows, "took", took.Round(time.Millisecond),
		"rows_per_second", int64(float64(rows)/max(took.Seconds(), 1e-3)), "consistent_at", end.String())
	return srcmysql.EncodePosition(st.Position), nil
}

// begin is a first start: check everything, take the position, plan the
// segments, and persist all of it before anything is written.
func (s *Snapshot) begin(ctx context.Context) (*state, error) {
	rep, err := srcmysql.Preflight(ctx, s.cfg.Source)
	if err != nil {
		return nil, err
	}
	if len(rep.Problems) > 0 {
		perr := &srcmysql.PreflightError{Addr: s.cfg.Source.Addr, Problems: rep.Problems}
		if errors.Is(perr, srcmysql.ErrUnreachable) {
			return nil, retry.Transient(perr)
		}
		return nil, perr
	}
	check, err := s.check(ctx, rep.Tables)
	if err != nil {
		return nil, err
	}
	if len(check.Problems) > 0 {
		return nil, &Refused{Problems: check.Problems}
	}
	pos, err := srcmysql.SnapshotPosition(ctx, s.cfg.Source)
	if err != nil {
		return nil, err
	}
	src, err := s.source(ctx)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	st := &state{Version: stateVersion, Position: pos, TakenAt: time.Now().UTC(), Segments: map[string]tablecopy.Segment{}}
	for _, ti := range rep.Tables {
		t, err := tablecopy.Describe(src, ti.Schema, ti.Name)
		if err != nil {
			return nil, err
		}
		segs, err := tablecopy.Split(src, t, 0, s.cfg.Workers)
		if err != nil {
			return nil, err
		}
		st.Tables = append(st.Tables, t.String())
		for i, seg := range segs {
			st.Segments[fmt.Sprintf("%s/%03d", t, i)] = seg
		}
	}
	if err := saveState(s.cfg.Store, s.cfg.Channel, st); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	s.log.Info("snapshot: position taken; copying", "position", pos.String(), "tables", len(st.Tables), "segments", len(st.Segments))
	return st, nil
}

// source opens a connection to the source set up for the copy's reads.
func (s *Snapshot) source(ctx context.Context) (*client.Conn, error) {
	c, err := srcmysql.Connect(ctx, s.cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("connect to source %s: %w", s.cfg.Source.Addr, err)
	}
	if err := tablecopy.SetupSource(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// schema creates the schemas and tables the target lacks through the
// sink, as DDL Txns at the snapshot position, and refuses a target table
// whose definition differs from the source's (a first start checked the
// same before taking the position; a restart checks again, since the
// target may have been changed meanwhile).
func (s *Snapshot) schema(ctx context.Context, tgt Target, st *state) error {
	src, err := s.source(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := s.cfg.Target(ctx)
	if err != nil {
		return retry.Transient(fmt.Errorf("connect to the target: %w", err))
	}
	defer dst.Close()
	pos := srcmysql.EncodePosition(st.Position)
	ddl := func(schema, stmt string) error {
		txn := &event.Txn{Kind: event.KindDDL, Pos: pos, Path: s.cfg.Path, DDL: &event.DDL{Schema: schema, Statement: stmt}}
		return tgt.Apply(ctx, []*event.Txn{txn})
	}
	var problems []srcmysql.Problem
	for _, name := range st.Tables {
		schema, table, _ := strings.Cut(name, ".")
		ok, err := hasSchema(dst, schema)
		if err != nil {
			return err
		}
		if !ok {
			if !s.cfg.CreateTables {
				problems = append(problems, missingProblem(name))
				continue
			}
			stmt, err := showCreateDatabase(src, schema)
			if err != nil {
				return fmt.Errorf("SHOW CREATE DATABASE %s on the source: %w", schema, err)
			}
			if err := ddl("", stmt); err != nil {
				return err
			}
		}
		tdef, err := readDefinition(dst, schema, table)
		if err != nil {
			return err
		}
		if tdef == nil {
			if !s.cfg.CreateTables {
				problems = append(problems, missingProblem(name))
				continue
			}
			stmt, err := showCreate(src, schema, table)
			if err != nil {
				return fmt.Errorf("SHOW CREATE TABLE %s on the source: %w", name, err)
			}
			if err := ddl(schema, stmt); err != nil {
				return err
			}
			s.log.Info("snapshot: created the target table from the source's definition", "table", name)
			continue
		}
		if p, err := s.compare(src, dst, schema, table, tdef); err != nil {
			return err
		} else if p != nil {
			problems = append(problems, *p)
		}
	}
	if len(problems) > 0 {
		return &Refused{Problems: problems}
	}
	return nil
}

// copy runs the shared copier over the state's unfinished segments,
// through the sink.
func (s *Snapshot) copy(ctx context.Context, tgt Target, st *state) error {
	src, err := s.source(ctx)
	if err != nil {
		return err
	}
	tables := map[string]*tablecopy.Table{}
	estimates := map[string]int64{}
	for _, name := range st.Tables {
		schema, table, _ := strings.Cut(name, ".")
		t, err := tablecopy.Describe(src, schema, table)
		if err != nil {
			src.Close()
			return err
		}
		tables[name], estimates[name] = t, t.Rows
	}
	src.Close()
	s.mu.Lock()
	s.estimates = estimates
	segs := make(map[string]tablecopy.Segment, len(st.Segments))
	for k, v := range st.Segments {
		segs[k] = v
	}
	s.mu.Unlock()
	cp, err := tablecopy.New(tablecopy.Options{
		Sources: []tablecopy.Source{{Name: "source " + s.cfg.Source.Addr, Dial: func(ctx context.Context) (*client.Conn, error) {
			return srcmysql.Connect(ctx, s.cfg.Source)
		}}},
		Targets:   []tablecopy.Target{sinkTarget{tgt: tgt, path: s.cfg.Path}},
		Tables:    tables,
		Workers:   s.cfg.Workers,
		ChunkRows: s.cfg.ChunkRows,
		Logger:    s.log,
		Save: func(key string, seg tablecopy.Segment) error {
			// Saves are written in the order their states were taken;
			// Progress only waits for the update, never for the disk.
			s.saveMu.Lock()
			defer s.saveMu.Unlock()
			s.mu.Lock()
			st.Segments[key] = seg
			b, err := json.Marshal(st)
			s.mu.Unlock()
			if err != nil {
				return err
			}
			return s.cfg.Store.Set(stateKey(s.cfg.Channel), b)
		},
	})
	if err != nil {
		return err
	}
	return cp.Run(ctx, segs)
}

// sinkTarget writes the copy's chunks through the channel's sink.
type sinkTarget struct {
	tgt  Target
	path []string
}

func (t sinkTarget) Write(ctx context.Context, table string, stmts []tablecopy.Statement) error {
	return t.tgt.Copy(ctx, table, t.path, stmts)
}

// Refused is the fatal error of a snapshot that cannot start: every
// problem found, each with its fix.
type Refused struct {
	Problems []srcmysql.Problem
}

func (e *Refused) Error() string {
	var b strings.Builder
	b.WriteString("the snapshot cannot start:")
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  - %s; fix: %s", p.What, p.Fix)
	}
	return b.String()
}

func missingProblem(table string) srcmysql.Problem {
	return srcmysql.Problem{
		What: fmt.Sprintf("the target lacks table %s and sink.create_tables is false", table),
		Fix:  "set sink.create_tables: true (the default with source.start: snapshot) to create it from the source's definition, or create it on the target",
	}
}

// classify marks what a retry can get past (a lost connection, a
// deadlock, a server shutting down) transient; the rest stays fatal.
func classify(err error) error {
	if err == nil || retry.IsTransient(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var me *gomysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case 1040, 1053, 1158, 1159, 1160, 1161, 1205, 1213, 1317, 1927, 2006, 2013:
			return retry.Transient(err)
		}
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gomysql.ErrBadConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return retry.Transient(err)
	}
	return err
}

func rowsOf(st *state) int64 {
	var n int64
	for _, seg := range st.Segments {
		n += seg.Rows
	}
	return n
}

func (s *Snapshot) rowsCopied() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return 0
	}
	return rowsOf(s.st)
}

// Progress returns the snapshot's progress; nil for a channel whose
// snapshot has not begun.
func (s *Snapshot) Progress() *pipeline.SnapshotStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if st == nil {
		if !s.seeding {
			return nil
		}
		return &pipeline.SnapshotStatus{State: "preparing", StartedAt: s.startedAt}
	}
	out := &pipeline.SnapshotStatus{State: "copying", Position: st.Position.String(), StartedAt: st.TakenAt,
		FinishedAt: st.FinishedAt, TablesTotal: len(st.Tables)}
	if st.Done {
		out.State = "done"
	}
	byTable := map[string]*pipeline.SnapshotTable{}
	for _, name := range st.Tables {
		byTable[name] = &pipeline.SnapshotTable{Table: name, Done: true, RowsEstimated: s.estimates[name]}
	}
	for _, seg := range st.Segments {
		if t := byTable[seg.Table]; t != nil {
			t.RowsCopied += seg.Rows
			t.Done = t.Done && seg.Done
		}
	}
	for _, name := range st.Tables {
		t := byTable[name]
		if t.Done || t.RowsEstimated < t.RowsCopied {
			t.RowsEstimated = t.RowsCopied
		}
		if t.Done {
			out.TablesDone++
		}
		out.RowsCopied += t.RowsCopied
		out.RowsEstimated += t.RowsEstimated
		out.Tables = append(out.Tables, *t)
	}
	slices.SortFunc(out.Tables, func(a, b pipeline.SnapshotTable) int { return strings.Compare(a.Table, b.Table) })
	if !st.Done {
		out.RowsPerSecond = s.rate.PerSecond()
		out.ETASeconds = tablecopy.ETA(out.RowsCopied, out.RowsEstimated, out.RowsPerSecond).Seconds()
	}
	return out
}

// logProgress logs a progress line every ProgressEvery while the copy runs.
func (s *Snapshot) logProgress(ctx context.Context) {
	tick := time.NewTicker(s.cfg.ProgressEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p := s.Progress()
		if p == nil || p.State != "copying" {
			continue
		}
		s.log.Info("snapshot: copying", "tables_done", fmt.Sprintf("%d/%d", p.TablesDone, p.TablesTotal),
			"rows", p.RowsCopied, "rows_estimated", p.RowsEstimated, "rows_per_second", int64(p.RowsPerSecond),
			"eta", time.Duration(p.ETASeconds*float64(time.Second)).Round(time.Second).String())
	}
}
