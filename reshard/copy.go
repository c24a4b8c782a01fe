package reshard

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// snapshot records every source's position before anything is copied and
// creates the target tables that are missing. Copying without a lock from
// a position taken before the copy is safe because the catch-up replays
// every change after it with idempotent upserts and deletes (DESIGN.md
// guarantee 2): a row copied at any moment converges to the source's row.
func (m *Migration) snapshot(ctx context.Context) error {
	m.st.Sources = make([]SourceState, len(m.plan.Sources))
	for i, s := range m.plan.Sources {
		c, err := dial(ctx, fmt.Sprintf("sources[%d]", i), s)
		if err != nil {
			return err
		}
		pos, err := queryString(c, "SELECT @@gtid_binlog_pos")
		c.Close()
		if err != nil {
			return fmt.Errorf("sources[%d] %s: read @@gtid_binlog_pos: %w", i, s.Addr, err)
		}
		m.st.Sources[i] = SourceState{Addr: s.Addr, Snapshot: pos}
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

// planSegments splits each table on each source into PK ranges: a key
// whose first column is an integer into Copy.Workers ranges of that column
// between MIN and MAX, others into one.
func (m *Migration) planSegments(ctx context.Context) error {
	m.st.Segments = map[string]*Segment{}
	for i, s := range m.plan.Sources {
		c, err := dial(ctx, fmt.Sprintf("sources[%d]", i), s)
		if err != nil {
			return err
		}
		for _, t := range m.plan.Tables {
			info := m.infos[t.Name]
			add := func(n int, seg *Segment) {
				seg.Source, seg.Table = i, t.Name
				m.st.Segments[fmt.Sprintf("%d/%s/%03d", i, t.Name, n)] = seg
			}
			if !info.pkInt {
				add(0, &Segment{})
				continue
			}
			pk := quoteIdent(info.key.cols[0])
			r, err := c.Execute("SELECT MIN(" + pk + "), MAX(" + pk + ") FROM " + qualified(t.Name))
			if err != nil {
				c.Close()
				return fmt.Errorf("sources[%d]: PK bounds of %s: %w", i, t.Name, err)
			}
			if r.Values[0][0].Type == gomysql.FieldValueTypeNull {
				add(0, &Segment{Done: true})
				continue
			}
			lo, _ := r.GetInt(0, 0)
			hi, _ := r.GetInt(0, 1)
			parts := int64(m.plan.Copy.Workers)
			step := (hi-lo)/parts + 1
			for n := int64(0); n < parts; n++ {
				a := lo + n*step
				if a > hi {
					break
				}
				b := min(a+step-1, hi)
				if n == parts-1 || b >= hi {
					b = 1<<63 - 1 // rows inserted past MAX during the copy go to the last range
				}
				add(int(n), &Segment{Lo: &a, Hi: &b})
				if b == 1<<63-1 {
					break
				}
			}
		}
		c.Close()
	}
	return nil
}

// runCopy copies every unfinished segment with Copy.Workers workers,
// recording each chunk's last PK once the targets hold it.
func (m *Migration) runCopy(ctx context.Context) error {
	var keys []string
	m.mu.Lock()
	for k, s := range m.st.Segments {
		if !s.Done {
			keys = append(keys, k)
		}
	}
	m.mu.Unlock()
	sort.Strings(keys)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go m.watchLoad(ctx)
	queue := make(chan string, len(keys))
	for _, k := range keys {
		queue <- k
	}
	close(queue)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for w := 0; w < m.plan.Copy.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cw := &copyWorker{m: m, targets: make([]*client.Conn, len(m.plan.Targets))}
			defer cw.close()
			for k := range queue {
				if err := cw.segment(ctx, k); err != nil {
					if firstErr.CompareAndSwap(nil, &err) {
						cancel()
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil && ctx.Err() == nil || p != nil && !isCanceled(*p) {
		return *p
	}
	return ctx.Err()
}

func isCanceled(err error) bool {
	return err == context.Canceled || strings.Contains(err.Error(), "context canceled")
}

type copyWorker struct {
	m       *Migration
	src     *client.Conn
	srcIdx  int
	targets []*client.Conn
	buf     [][]byte
}

func (cw *copyWorker) close() {
	if cw.src != nil {
		cw.src.Close()
	}
	for _, c := range cw.targets {
		if c != nil {
			c.Close()
		}
	}
}

// maxStatementBytes caps one multi-row INSERT (MariaDB's default
// max_allowed_packet is 16 MiB); a target's part of a chunk above it is
// written as several INSERTs in one transaction.
var maxStatementBytes = 4 << 20 // a variable so tests can make it small

// copyBatch is one chunk read from a source, already routed: per target
// the multi-row INSERTs holding its rows (counts[j] rows in all), and the
// chunk's last key.
type copyBatch struct {
	stmts  [][][]byte // per target; the last one is being filled
	counts []int
	n      int
	last   [][]byte
	done   bool // the segment has no rows after this chunk
}

// segment copies one segment. A reader goroutine streams each chunk from
// the source and routes it into per-target INSERTs while the previous
// chunk is being written, so reading and writing overlap; the segment's
// last key is saved only after every target acknowledged its chunk, in
// chunk order, so a restart after kill -9 resumes after a key the targets
// hold (the chunk after it may have been written already: the upserts
// make writing it again harmless).
func (cw *copyWorker) segment(ctx context.Context, key string) error {
	m := cw.m
	m.mu.Lock()
	seg := *m.st.Segments[key]
	m.mu.Unlock()
	info := m.infos[seg.Table]
	t := info.plan
	if cw.src == nil || cw.srcIdx != seg.Source {
		if cw.src != nil {
			cw.src.Close()
		}
		c, err := dial(ctx, fmt.Sprintf("sources[%d]", seg.Source), m.plan.Sources[seg.Source])
		if err != nil {
			return err
		}
		cw.src, cw.srcIdx = c, seg.Source
	}
	for j := range cw.targets {
		if cw.targets[j] == nil {
			c, err := dial(ctx, fmt.Sprintf("targets[%d]", j), m.plan.Targets[j])
			if err != nil {
				return err
			}
			cw.targets[j] = c
		}
	}
	st := newCopyStatements(info)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan *copyBatch, 1)
	free := make(chan *copyBatch, 2)
	for range 2 {
		free <- &copyBatch{stmts: make([][][]byte, len(cw.targets)), counts: make([]int, len(cw.targets))}
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- cw.read(rctx, info, st, seg, batches, free)
	}()
	fail := func(err error) error {
		cancel()
		for range batches {
		}
		<-readErr
		return err
	}
	errs := make([]error, len(cw.targets))
	for b := range batches {
		if b.n > 0 {
			var wg sync.WaitGroup
			for j := range cw.targets {
				errs[j] = nil
				if b.counts[j] == 0 {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[j] = execAll(cw.targets[j], b.stmts[j])
				}()
			}
			wg.Wait()
			for j, err := range errs {
				if err != nil {
					return fail(fmt.Errorf("copy %s to targets[%d] %s: %w", t.TargetName(), j, m.plan.Targets[j].Addr, err))
				}
			}
			seg.LastKey, seg.Last = b.last, ""
			seg.Begun = true
			seg.Rows += int64(b.n)
			m.rowsCopied.Add(int64(b.n))
			m.tableRows(t.Name).Add(int64(b.n))
		}
		seg.Done = b.done
		m.mu.Lock()
		*m.st.Segments[key] = seg
		err := m.save()
		m.mu.Unlock()
		if err != nil {
			return fail(err)
		}
		free <- b
	}
	return <-readErr
}

// copyStatements holds the fixed parts of a table's copy statements.
type copyStatements struct {
	selectList string
	head, tail string
}

func newCopyStatements(info *tableInfo) copyStatements {
	cols := make([]string, len(info.columns))
	for i, c := range info.columns {
		cols[i] = quoteIdent(c)
	}
	var update strings.Builder
	for i, c := range cols {
		if i > 0 {
			update.WriteByte(',')
		}
		update.WriteString(c + "=VALUES(" + c + ")")
	}
	list := strings.Join(cols, ",")
	return copyStatements{selectList: list,
		head: "INSERT INTO " + qualified(info.plan.TargetName()) + " (" + list + ") VALUES ",
		tail: " ON DUPLICATE KEY UPDATE " + update.String()}
}

// read streams the segment's chunks from the source, from seg's position
// on, routes each row into its target's INSERT and hands the batches to
// the writer.
func (cw *copyWorker) read(ctx context.Context, info *tableInfo, st copyStatements, seg Segment, out chan<- *copyBatch, free <-chan *copyBatch) error {
	m := cw.m
	t := info.plan
	var res gomysql.Result
	var binary []bool
	keyBuf := make([][]byte, len(info.key.cols))
	for {
		if err := m.throttle(ctx, seg.Source); err != nil {
			return err
		}
		var b *copyBatch
		select {
		case b = <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
		for j := range b.stmts {
			if len(b.stmts[j]) == 0 {
				b.stmts[j] = [][]byte{nil}
			}
			b.stmts[j] = b.stmts[j][:1]
			b.stmts[j][0] = append(b.stmts[j][0][:0], st.head...)
			b.counts[j] = 0
		}
		b.n = 0
		q := "SELECT " + st.selectList + " FROM " + qualified(t.Name) + segmentWhere(info.key, &seg) +
			" ORDER BY " + info.key.list() + " LIMIT " + strconv.Itoa(m.plan.Copy.ChunkRows)
		err := cw.src.ExecuteSelectStreaming(q, &res, func(row []gomysql.FieldValue) error {
			shard, err := t.rule.Shard(row[info.keyIdx].Value())
			if err != nil {
				return fmt.Errorf("copy %s: row with key %s: %w", t.Name, showKey(info.key.values(row, true)), err)
			}
			stmts := b.stmts[shard]
			s := stmts[len(stmts)-1]
			if len(s) > maxStatementBytes {
				stmts[len(stmts)-1] = append(s, st.tail...)
				stmts = append(stmts, append([]byte(nil), st.head...))
				b.stmts[shard] = stmts
				s = stmts[len(stmts)-1]
			} else if len(s) > len(st.head) {
				s = append(s, ',')
			}
			s = append(s, '(')
			for ci := range row {
				if ci > 0 {
					s = append(s, ',')
				}
				s = appendValue(s, &row[ci], binary[ci])
			}
			stmts[len(stmts)-1] = append(s, ')')
			b.counts[shard]++
			b.n++
			// The row's memory is reused for the next one: keep its key's
			// text (without allocating) in case it is the chunk's last.
			for i, j := range info.key.idx {
				keyBuf[i] = appendKeyText(keyBuf[i][:0], &row[j])
			}
			return nil
		}, func(r *gomysql.Result) error {
			binary = binary[:0]
			for _, f := range r.Fields {
				binary = append(binary, f.Charset == 63)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("copy %s from sources[%d]: %w", t.Name, seg.Source, err)
		}
		b.done = b.n < m.plan.Copy.ChunkRows
		if b.n > 0 {
			b.last = make([][]byte, len(keyBuf))
			for i, k := range keyBuf {
				b.last[i] = append([]byte(nil), k...)
			}
		}
		for j := range b.stmts {
			last := len(b.stmts[j]) - 1
			b.stmts[j][last] = append(b.stmts[j][last], st.tail...)
		}
		if b.n > 0 && !b.done {
			seg.LastKey, seg.Last, seg.Begun = b.last, "", true
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.done {
			return nil
		}
	}
}

// execAll runs a target's INSERTs of one chunk: one statement by itself,
// several in one transaction, so a chunk costs each target one commit.
func execAll(c *client.Conn, stmts [][]byte) error {
	if len(stmts) == 1 {
		_, err := c.Execute(string(stmts[0]))
		return err
	}
	if err := c.Begin(); err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := c.Execute(string(s)); err != nil {
			_ = c.Rollback()
			return err
		}
	}
	return c.Commit()
}

// appendKeyText appends a key value's text, as fieldText gives it.
func appendKeyText(b []byte, v *gomysql.FieldValue) []byte {
	switch v.Type {
	case gomysql.FieldValueTypeSigned:
		return strconv.AppendInt(b, v.AsInt64(), 10)
	case gomysql.FieldValueTypeUnsigned:
		return strconv.AppendUint(b, v.AsUint64(), 10)
	case gomysql.FieldValueTypeString:
		return append(b, v.AsString()...)
	}
	return append(b, v.String()...)
}

// segmentWhere is the WHERE clause of a segment's next chunk: after the
// last key copied (or from the segment's low bound), up to its high bound.
// Lo and Hi bound the key's first column.
func segmentWhere(k pkey, seg *Segment) string {
	var where []string
	if last := seg.lastKey(); seg.Begun && len(last) == len(k.cols) {
		where = append(where, k.after(last))
	} else if seg.Lo != nil {
		where = append(where, quoteIdent(k.cols[0])+" >= "+strconv.FormatInt(*seg.Lo, 10))
	}
	if seg.Hi != nil {
		where = append(where, quoteIdent(k.cols[0])+" <= "+strconv.FormatInt(*seg.Hi, 10))
	}
	if len(where) == 0 {
		return ""
	}
	return " WHERE (" + strings.Join(where, ") AND (") + ")"
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
