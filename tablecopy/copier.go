package tablecopy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// Source is one server rows are read from.
type Source struct {
	// Name is how messages name it, e.g. "source 10.0.0.1:3306".
	Name string
	// Dial opens a connection; the copier sets it up with SetupSource.
	Dial func(ctx context.Context) (*client.Conn, error)
}

// Target is one server chunks are written to.
//
// Write applies stmts, the part of one chunk of table ("schema.table" on
// the target) that goes to this target, as one transaction: all of it or
// nothing. It is called by several workers at once and returns once the
// chunk is durable. An error fails the copy (the caller retries the copy,
// which resumes after the last chunk every target acknowledged).
type Target interface {
	Write(ctx context.Context, table string, stmts []Statement) error
}

// Options configures a Copier.
type Options struct {
	Sources []Source
	Targets []Target
	// Tables are the tables to copy, by Segment.Table ("schema.table").
	Tables map[string]*Table
	// Workers is how many segments are copied at once (default 4). Each
	// worker holds one source connection and reads its next chunk while
	// the previous one is written.
	Workers int
	// ChunkRows is the most rows one chunk reads (default 10,000);
	// ChunkBytes the size of a chunk's data it aims for (default 8 MiB):
	// after a chunk above it the next reads proportionally fewer rows, so
	// wide rows do not grow the buffers (two chunks per worker are held).
	ChunkRows  int
	ChunkBytes int
	// Format is how chunks are written (default FormatLoad). A target
	// that refuses LOCAL INFILE is written with FormatInsert.
	Format Format
	// Route names the target of a row (an index into Targets); nil sends
	// every row to target 0.
	Route func(t *Table, row []mysql.FieldValue) (int, error)
	// Throttle, when set, is called before each chunk is read from source
	// (an index into Sources) and may wait.
	Throttle func(ctx context.Context, source int) error
	// Save records a segment's progress (key is its key in the map Run
	// was given). It is called after every target acknowledged a chunk,
	// in chunk order per segment, from the segment's worker.
	Save func(key string, seg Segment) error
	// Copied, when set, is told of every chunk's rows once saved.
	Copied func(table string, rows int64)
	Logger *slog.Logger
}

// Copier copies segments of tables from sources to targets in key order,
// chunk by chunk, value-exactly (see encode.go), recording each chunk once
// every target holds it. Run may be called again after an error or a
// cancellation to resume from the recorded segments.
type Copier struct {
	opts    Options
	log     *slog.Logger
	formats []atomic.Int32 // per target
}

const (
	defaultWorkers    = 4
	defaultChunkRows  = 10_000
	defaultChunkBytes = 8 << 20
	minChunkRows      = 100
)

// maxStatementBytes caps one REPLACE … VALUES statement (MariaDB's default
// max_allowed_packet is 16 MiB); a chunk above it is written as several
// statements in one transaction.
var maxStatementBytes = 4 << 20 // a variable so tests can make it small

// New returns a copier.
func New(opts Options) (*Copier, error) {
	if len(opts.Sources) == 0 || len(opts.Targets) == 0 {
		return nil, errors.New("tablecopy: a copy needs a source and a target")
	}
	if opts.Workers <= 0 {
		opts.Workers = defaultWorkers
	}
	if opts.ChunkRows <= 0 {
		opts.ChunkRows = defaultChunkRows
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = defaultChunkBytes
	}
	if opts.Format == 0 {
		opts.Format = FormatLoad
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Copier{opts: opts, log: opts.Logger, formats: make([]atomic.Int32, len(opts.Targets))}
	for i := range c.formats {
		c.formats[i].Store(int32(opts.Format))
	}
	return c, nil
}

// Formats returns the format each target is written in (a target that
// refused LOCAL INFILE switched to FormatInsert).
func (c *Copier) Formats() []Format {
	out := make([]Format, len(c.formats))
	for i := range c.formats {
		out[i] = Format(c.formats[i].Load())
	}
	return out
}

// Run copies every segment of segs that is not done, Options.Workers at a
// time, in key order of their map keys. It returns nil once all are done,
// ctx's error when cancelled, or the first failure.
func (c *Copier) Run(ctx context.Context, segs map[string]Segment) error {
	var keys []string
	for k, s := range segs {
		if !s.Done {
			if _, ok := c.opts.Tables[s.Table]; !ok {
				return fmt.Errorf("tablecopy: segment %s names table %s, which is not being copied", k, s.Table)
			}
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return nil
	}
	if c.opts.Format == FormatLoad {
		if err := c.probe(ctx, c.opts.Tables[segs[keys[0]].Table]); err != nil {
			return err
		}
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan string, len(keys))
	for _, k := range keys {
		queue <- k
	}
	close(queue)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range min(c.opts.Workers, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{c: c}
			defer w.close()
			for k := range queue {
				if err := w.segment(ctx, k, segs[k]); err != nil {
					if firstErr.CompareAndSwap(nil, &err) {
						cancel()
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err
	}
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// probe writes an empty LOAD DATA to every target (it changes nothing) and
// switches the targets that refuse LOCAL INFILE to FormatInsert.
func (c *Copier) probe(ctx context.Context, t *Table) error {
	e := newEncoding(t)
	for j, tg := range c.opts.Targets {
		if Format(c.formats[j].Load()) != FormatLoad {
			continue
		}
		err := tg.Write(ctx, t.TargetName(), []Statement{{SQL: e.loadSQL(), Infile: []byte{}}})
		switch {
		case err == nil:
		case LocalInfileRefused(err):
			c.log.Warn("target refuses LOAD DATA LOCAL (local_infile off); copying with REPLACE statements, which is slower", "target", j, "err", err)
			c.formats[j].Store(int32(FormatInsert))
		default:
			return fmt.Errorf("copy %s: write to target %d: %w", t.TargetName(), j, err)
		}
	}
	return nil
}

type worker struct {
	c      *Copier
	src    *client.Conn
	srcIdx int
}

func (w *worker) close() {
	if w.src != nil {
		w.src.Close()
		w.src = nil
	}
}

// chunk is one chunk read from a source, already encoded per target.
type chunk struct {
	stmts  [][]Statement // per target
	bufs   [][]byte      // per target: the file (load) or the statements being filled (insert)
	counts []int         // rows per target
	n      int           // rows in all
	bytes  int
	last   [][]byte // the chunk's last key
	done   bool     // the segment has no rows after this chunk
}

// segment copies one segment. A reader goroutine streams each chunk from
// the source and encodes it per target while the previous chunk is being
// written, so reading and writing overlap; the segment's last key is saved
// only after every target acknowledged its chunk, in chunk order, so a
// restart after kill -9 resumes after a key the targets hold (the chunk
// after it may have been written already: REPLACE makes writing it again
// harmless).
func (w *worker) segment(ctx context.Context, key string, seg Segment) error {
	c := w.c
	t := c.opts.Tables[seg.Table]
	if w.src == nil || w.srcIdx != seg.Source {
		w.close()
		if seg.Source < 0 || seg.Source >= len(c.opts.Sources) {
			return fmt.Errorf("tablecopy: segment %s names source %d of %d", key, seg.Source, len(c.opts.Sources))
		}
		src := c.opts.Sources[seg.Source]
		conn, err := src.Dial(ctx)
		if err != nil {
			return err
		}
		if err := SetupSource(conn); err != nil {
			conn.Close()
			return fmt.Errorf("%s: %w", src.Name, err)
		}
		w.src, w.srcIdx = conn, seg.Source
	}
	e := newEncoding(t)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan *chunk, 1)
	free := make(chan *chunk, 2)
	n := len(c.opts.Targets)
	for range 2 {
		free <- &chunk{stmts: make([][]Statement, n), bufs: make([][]byte, n), counts: make([]int, n)}
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		readErr <- w.read(rctx, t, e, seg, chunks, free)
	}()
	fail := func(err error) error {
		cancel()
		for range chunks {
		}
		<-readErr
		if err == nil {
			return nil
		}
		w.close() // a reader stopped mid-result leaves the connection unusable
		return err
	}
	errs := make([]error, n)
	for ch := range chunks {
		if ch.n > 0 {
			var wg sync.WaitGroup
			for j, tg := range c.opts.Targets {
				errs[j] = nil
				if ch.counts[j] == 0 {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[j] = tg.Write(ctx, t.TargetName(), ch.stmts[j])
				}()
			}
			wg.Wait()
			for j, err := range errs {
				if err != nil {
					return fail(fmt.Errorf("copy %s to target %d: %w", t.TargetName(), j, err))
				}
			}
			seg.LastKey, seg.Last, seg.Begun = ch.last, "", true
			seg.Rows += int64(ch.n)
		}
		seg.Done = ch.done
		if c.opts.Save != nil {
			if err := c.opts.Save(key, seg); err != nil {
				return fail(err)
			}
		}
		if c.opts.Copied != nil && ch.n > 0 {
			c.opts.Copied(seg.Table, int64(ch.n))
		}
		free <- ch
	}
	if err := <-readErr; err != nil {
		w.close()
		return err
	}
	return nil
}

// read streams the segment's chunks from the source, from seg's position
// on, encodes each row for its target and hands the chunks to the writer.
func (w *worker) read(ctx context.Context, t *Table, e *encoding, seg Segment, out chan<- *chunk, free <-chan *chunk) error {
	c := w.c
	limit := c.opts.ChunkRows
	keyBuf := make([][]byte, len(t.Key.Columns))
	selectList := e.columns
	var res mysql.Result
	for {
		if c.opts.Throttle != nil {
			if err := c.opts.Throttle(ctx, seg.Source); err != nil {
				return err
			}
		}
		var ch *chunk
		select {
		case ch = <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
		formats := make([]Format, len(c.formats))
		for j := range ch.bufs {
			formats[j] = Format(c.formats[j].Load())
			ch.bufs[j] = ch.bufs[j][:0]
			ch.stmts[j] = ch.stmts[j][:0]
			ch.counts[j] = 0
			if formats[j] == FormatInsert {
				ch.bufs[j] = append(ch.bufs[j], e.insertHead()...)
			}
		}
		ch.n, ch.bytes = 0, 0
		q := "SELECT " + selectList + " FROM " + t.Quoted() + seg.where(t.Key) +
			" ORDER BY " + t.Key.List() + " LIMIT " + strconv.Itoa(limit)
		// go-mysql has no context support: closing the socket is what
		// interrupts a read when ctx ends.
		netConn := w.src.Conn.Conn
		stop := context.AfterFunc(ctx, func() { _ = netConn.Close() })
		stmt, err := w.src.Prepare(q)
		if err != nil {
			stop()
			return fmt.Errorf("copy %s from %s: %w", t, c.opts.Sources[seg.Source].Name, err)
		}
		err = stmt.ExecuteSelectStreaming(&res, func(row []mysql.FieldValue) error {
			j := 0
			if c.opts.Route != nil {
				var err error
				if j, err = c.opts.Route(t, row); err != nil {
					return fmt.Errorf("row with key %s: %w", ShowKey(t.Key.Values(row, true)), err)
				}
			}
			b := ch.bufs[j]
			before := len(b)
			if formats[j] == FormatLoad {
				b = e.appendLoadRow(b, row)
			} else {
				if len(b) > maxStatementBytes {
					ch.stmts[j] = append(ch.stmts[j], Statement{SQL: string(b)})
					b = append(b[:0], e.insertHead()...)
				} else if ch.counts[j] > 0 && len(b) > len(e.insertHead()) {
					b = append(b, ',')
				}
				b = e.appendInsertRow(b, row)
			}
			ch.bufs[j] = b
			ch.bytes += len(b) - before
			ch.counts[j]++
			ch.n++
			// The row's memory is reused for the next one: keep its key's
			// text (without allocating) in case it is the chunk's last.
			for i, kc := range t.Key.Columns {
				keyBuf[i] = appendText(keyBuf[i][:0], &row[kc.At])
			}
			return nil
		}, func(r *mysql.Result) error {
			if len(r.Fields) != len(t.Columns) {
				return fmt.Errorf("%w: %s has %d columns, %d were described", ErrChanged, t, len(r.Fields), len(t.Columns))
			}
			return nil
		})
		if err == nil {
			err = stmt.Close()
		}
		if !stop() {
			return context.Cause(ctx)
		}
		if err != nil {
			return fmt.Errorf("copy %s from %s: %w", t, c.opts.Sources[seg.Source].Name, err)
		}
		ch.done = ch.n < limit
		if ch.n > 0 {
			ch.last = make([][]byte, len(keyBuf))
			for i, k := range keyBuf {
				ch.last[i] = append([]byte(nil), k...)
			}
		}
		for j := range ch.bufs {
			if ch.counts[j] == 0 {
				continue
			}
			if formats[j] == FormatLoad {
				ch.stmts[j] = append(ch.stmts[j], Statement{SQL: e.loadSQL(), Infile: ch.bufs[j]})
			} else {
				ch.stmts[j] = append(ch.stmts[j], Statement{SQL: string(ch.bufs[j])})
			}
		}
		if ch.n > 0 && !ch.done {
			seg.LastKey, seg.Last, seg.Begun = ch.last, "", true
		}
		// Aim the next chunk at ChunkBytes: wide rows read fewer per chunk.
		if ch.n > 0 {
			next := int(int64(ch.n) * int64(c.opts.ChunkBytes) / int64(max(ch.bytes, 1)))
			limit = max(minChunkRows, min(c.opts.ChunkRows, next))
		}
		select {
		case out <- ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		if ch.done {
			return nil
		}
	}
}

// ErrChanged is matched (errors.Is) by the error of a copy whose table
// changed shape on the source while it ran (a DDL).
var ErrChanged = errors.New("table changed during the copy")
