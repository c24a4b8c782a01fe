package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/event"
)

// applyState is the per-connection scratch of Apply, reused across calls.
//
// Net effect: index maps the folded row key (namespace + the key values as
// event.AppendKeyValue encodes them, the DAG's notion of "same key") to
// the entry holding that row's last image in the batch: an upsert (the
// after-image) or a delete (the before-image, for its key). When two
// changes fold to one key but differ exactly ('a' vs 'A' in a binary
// column), or describe one table with two *event.Table values, the sink
// cannot tell whether the target sees one row or two, so it executes what
// it has so far (in the same transaction) and starts over: order is kept,
// merging is only skipped.
type applyState struct {
	buf []byte // statement being built
	// queued holds the statements not yet sent (see applier.exec), and
	// queuedTables the table each is about.
	queued       []byte
	queuedTables []string
	// queuedReads are the queued statements whose result the sink reads
	// (unique replacements, collision.go), by position in the queue.
	queuedReads []queuedRead
	// replaced counts, per table, the target rows this unit's REPLACEs
	// remove for holding an incoming row's unique value (one-way).
	replaced []replacement
	folded   []byte
	exact    []byte
	arena    []byte // exact keys of entries
	index    map[string]int32
	entries  []rowEntry
	groups   []rowGroup
	// owners carried by the batch (Config.Unsynced), and the latest commit
	// time among their changes.
	owners      map[string]struct{}
	ownersUntil time.Time
	// foreign holds the changes of the unit the ownership guard flags.
	foreign []foreignWrite
}

type rowEntry struct {
	group      int32
	exactStart int32
	exactEnd   int32
	del        bool
	skip       bool  // conflict resolved in the target's favour: not written
	image      []any // after-image, or before-image for a delete
	// prior is what the batch's first change of the row expects the target
	// to hold (its before-image; nil: no row), kept for conflict detection.
	prior []any
	txn   *event.Txn // the Txn of the last change, for conflict records
	first *event.Txn // the Txn of the first change (whose prior it is)
}

type rowGroup struct {
	plan    *tablePlan
	entries []int32 // in order of first change
}

func (st *applyState) reset() {
	// A huge batch (a chunk of a huge transaction) grows the scratch; it
	// is not kept for the next batch, so an idle pool holds little.
	if st.index == nil || len(st.index) > maxRowsKept {
		st.index = make(map[string]int32)
	}
	clear(st.index)
	clear(st.entries) // drop references to row images
	st.entries = st.entries[:0]
	if cap(st.entries) > maxRowsKept {
		st.entries = nil
	}
	if cap(st.arena) > maxBytesPerStatement {
		st.arena = nil
	}
	for i := range st.groups {
		st.groups[i].plan = nil
	}
	st.groups = st.groups[:0]
	st.arena = st.arena[:0]
	clear(st.owners)
	clear(st.foreign)
	st.foreign = st.foreign[:0]
	st.ownersUntil = time.Time{}
	if cap(st.buf) > maxBytesPerStatement {
		st.buf = nil // a huge batch or row grew it; do not keep that much per connection
	}
	if cap(st.queued) > maxBytesPerStatement {
		st.queued = nil
	}
	st.queued, st.queuedTables, st.queuedReads = st.queued[:0], st.queuedTables[:0], st.queuedReads[:0]
	clear(st.replaced)
	st.replaced = st.replaced[:0]
}

// queuedRead is a queued statement whose result set is read: the rows
// of plan's table that a REPLACE of the unit will remove (collision.go).
type queuedRead struct {
	stmt int
	plan *tablePlan
}

// applier runs one batch on one connection.
type applier struct {
	s    *Sink
	slot *pooledConn
	st   *applyState
	txn  *event.Txn // the Txn whose changes are being added
}

// exec queues statement b (about table) to be sent with the batch's next
// round trip; b may be reused once exec returns. The queued statements go
// as one multi-statement (the connection has CLIENT_MULTI_STATEMENTS) when
// the batch commits, when a read needs the target's current state (query),
// or when they would exceed maxStmtBytes together: a batch of ordinary
// size costs one round trip, COMMIT included, which is what matters over
// a cross-datacenter link. The server runs them in order and stops at the
// first error. A statement that alone reaches that size is sent at once,
// after the queue.
func (a *applier) exec(b []byte, table string) error {
	return a.execRead(b, table, nil)
}

// execRead is exec for a statement that returns rows: when its result
// arrives, they are noted as unique replacements in read's table
// (noteReplaced). A nil read is exec.
func (a *applier) execRead(b []byte, table string, read *tablePlan) error {
	st := a.st
	if len(st.queued) > 0 && len(st.queued)+1+len(b) > a.s.maxStmtBytes {
		if err := a.send(false); err != nil {
			return err
		}
	}
	if len(b) >= a.s.maxStmtBytes {
		// A statement as large as the queue goes on its own, from b,
		// rather than copied into the queue first.
		r, err := a.slot.c.Execute(unsafe.String(unsafe.SliceData(b), len(b)))
		if err == nil && read != nil {
			a.noteReplaced(read, r)
		}
		return statementError(table, err)
	}
	if len(st.queued) > 0 {
		st.queued = append(st.queued, ';')
	}
	st.queued = append(st.queued, b...)
	if read != nil {
		st.queuedReads = append(st.queuedReads, queuedRead{stmt: len(st.queuedTables), plan: read})
	}
	st.queuedTables = append(st.queuedTables, table)
	return nil
}

// send executes the queued statements, then COMMIT when commit is set, in
// one round trip. An error names the table of the statement that failed.
func (a *applier) send(commit bool) error {
	st := a.st
	if commit {
		if len(st.queued) > 0 {
			st.queued = append(st.queued, ';')
		}
		st.queued = append(st.queued, "COMMIT"...)
		st.queuedTables = append(st.queuedTables, commitStatement)
	}
	tables, reads := st.queuedTables, st.queuedReads
	q := unsafe.String(unsafe.SliceData(st.queued), len(st.queued))
	defer func() {
		st.queued, st.queuedTables, st.queuedReads = st.queued[:0], st.queuedTables[:0], st.queuedReads[:0]
	}()
	read := func(n int, r *mysql.Result) {
		for len(reads) > 0 && reads[0].stmt < n {
			reads = reads[1:]
		}
		if len(reads) > 0 && reads[0].stmt == n && r != nil {
			a.noteReplaced(reads[0].plan, r)
		}
	}
	switch len(tables) {
	case 0:
		return nil
	case 1:
		r, err := a.slot.c.Execute(q)
		if err == nil {
			read(0, r)
		}
		return statementError(tables[0], err)
	}
	var failed error
	n := 0
	_, err := a.slot.c.ExecuteMultiple(q, func(r *mysql.Result, err error) {
		if err != nil && failed == nil {
			failed = statementError(tables[min(n, len(tables)-1)], err)
		}
		if err == nil && failed == nil {
			read(n, r)
		}
		n++
	})
	if failed != nil {
		return failed
	}
	if err != nil { // the connection failed between results
		return &stmtError{err: err, server: true}
	}
	if n != len(tables) {
		return &stmtError{err: fmt.Errorf("target answered %d of %d statements", n, len(tables)), server: true}
	}
	return nil
}

// commitStatement stands for COMMIT among the queued statements' tables.
const commitStatement = "\x00commit"

func statementError(table string, err error) error {
	switch {
	case err == nil:
		return nil
	case table == commitStatement:
		return &stmtError{err: fmt.Errorf("commit: %w", err), server: true}
	}
	return &stmtError{table: table, err: err, server: true}
}

// query sends the queued statements, then runs q (a read that must see
// them, or a statement whose error needs its own wording) on its own.
func (a *applier) query(q string) (*mysql.Result, error) {
	if err := a.send(false); err != nil {
		return nil, err
	}
	return a.slot.c.Execute(q)
}

func (a *applier) change(c *event.Change) error {
	if c.Table == nil {
		return &stmtError{table: c.Namespace, err: errors.New("row change without a table description")}
	}
	p, err := a.s.plan(a.slot, c.Table)
	if err != nil {
		return err
	}
	n := len(c.Table.Columns)
	for _, img := range [2][]any{c.Before, c.After} {
		if img != nil && len(img) != n {
			return &stmtError{table: p.ns, err: fmt.Errorf("%s row image has %d values for %d columns", c.Op, len(img), n)}
		}
	}
	switch c.Op {
	case event.OpInsert:
		if c.After == nil {
			return &stmtError{table: p.ns, err: errors.New("insert without an after-image")}
		}
	case event.OpDelete:
		if c.Before == nil {
			return &stmtError{table: p.ns, err: errors.New("delete without a before-image")}
		}
	case event.OpUpdate:
		if c.Before == nil || c.After == nil {
			return &stmtError{table: p.ns, err: errors.New("update without both images")}
		}
	default:
		return &stmtError{table: p.ns, err: fmt.Errorf("unexpected operation %s for a table", c.Op)}
	}
	if p.keyless {
		return a.keyless(p, c)
	}
	a.noteOwner(p, c.After)
	a.noteOwner(p, c.Before)
	a.checkHome(p, c)
	switch c.Op {
	case event.OpInsert:
		return a.setRow(p, c.After, false, nil)
	case event.OpDelete:
		return a.setRow(p, c.Before, true, c.Before)
	}
	// Update: when the row key changed, the old key is deleted and the new
	// image upserted; otherwise the new image is upserted.
	before := appendExactKey(a.st.exact[:0], p, c.Before)
	mid := len(before)
	both := appendExactKey(before, p, c.After)
	a.st.exact = both
	if !bytes.Equal(both[:mid], both[mid:]) {
		if err := a.setRow(p, c.Before, true, c.Before); err != nil {
			return err
		}
		return a.setRow(p, c.After, false, nil)
	}
	return a.setRow(p, c.After, false, c.Before)
}

// setRow records image as the latest state of its row in the batch; prior
// is what this change expects the target row to be (nil: absent).
func (a *applier) setRow(p *tablePlan, image []any, del bool, prior []any) error {
	st := a.st
	st.folded = appendFoldedKey(st.folded[:0], p, image)
	st.exact = appendExactKey(st.exact[:0], p, image)
	if idx, ok := st.index[string(st.folded)]; ok {
		e := &st.entries[idx]
		if st.groups[e.group].plan == p && bytes.Equal(st.arena[e.exactStart:e.exactEnd], st.exact) {
			e.image, e.del, e.txn = image, del, a.txn
			return nil
		}
		if err := a.flush(); err != nil {
			return err
		}
	}
	g := st.group(p)
	idx := int32(len(st.entries))
	start := int32(len(st.arena))
	st.arena = append(st.arena, st.exact...)
	st.entries = append(st.entries, rowEntry{group: g, exactStart: start, exactEnd: int32(len(st.arena)), del: del, image: image, prior: prior, txn: a.txn, first: a.txn})
	st.index[string(st.folded)] = idx
	st.groups[g].entries = append(st.groups[g].entries, idx)
	return nil
}

func (st *applyState) group(p *tablePlan) int32 {
	for i := range st.groups {
		if st.groups[i].plan == p {
			return int32(i)
		}
	}
	if len(st.groups) < cap(st.groups) {
		st.groups = st.groups[:len(st.groups)+1]
		g := &st.groups[len(st.groups)-1]
		g.plan, g.entries = p, g.entries[:0]
	} else {
		st.groups = append(st.groups, rowGroup{plan: p})
	}
	return int32(len(st.groups) - 1)
}

func appendFoldedKey(b []byte, p *tablePlan, image []any) []byte {
	b = append(b, p.ns...)
	b = append(b, 0)
	for _, k := range p.keyCols {
		b = event.AppendKeyValue(b, image[k])
	}
	return b
}

// appendExactKey encodes the key values byte-exactly (text unfolded).
func appendExactKey(b []byte, p *tablePlan, image []any) []byte {
	for _, k := range p.keyCols {
		switch v := image[k].(type) {
		case string:
			b = append(b, 's')
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case []byte:
			b = append(b, 's')
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		default:
			b = event.AppendKeyValue(b, v)
		}
	}
	return b
}

// flush executes the net effect collected so far: per table, the deletes
// (by row key) and then the upserts (REPLACE of full after-images).
//
// Tables go in name order and rows in key order, whatever order the batch
// touched them in. Each row key appears once in a flush, so the order does
// not change the result; it makes every worker take its row locks in one
// global order, so concurrent batches on the same tables queue behind each
// other instead of deadlocking (InnoDB's unique checks take next-key locks
// even under READ COMMITTED, so independent rows can still collide).
func (a *applier) flush() error {
	st := a.st
	slices.SortStableFunc(st.groups, func(x, y rowGroup) int { return strings.Compare(x.plan.ns, y.plan.ns) })
	for gi := range st.groups {
		slices.SortFunc(st.groups[gi].entries, func(x, y int32) int {
			ex, ey := &st.entries[x], &st.entries[y]
			return bytes.Compare(st.arena[ex.exactStart:ex.exactEnd], st.arena[ey.exactStart:ey.exactEnd])
		})
	}
	for gi := range st.groups {
		g := &st.groups[gi]
		if a.s.conflicts != nil {
			if err := a.detect(g); err != nil {
				return err
			}
		}
		if err := a.emit(g, true); err != nil {
			return err
		}
		if a.s.conflicts == nil {
			if err := a.queueReplacedQuery(g); err != nil {
				return err
			}
		}
		if err := a.emit(g, false); err != nil {
			return err
		}
	}
	clear(st.index)
	clear(st.entries)
	st.entries = st.entries[:0]
	st.groups = st.groups[:0]
	st.arena = st.arena[:0]
	return nil
}

// emit writes the deletes (del) or the upserts of one table as multi-row
// statements of at most maxRowsPerStatement rows and about maxStmtBytes.
func (a *applier) emit(g *rowGroup, del bool) error {
	p := g.plan
	b := a.st.buf[:0]
	rows := 0
	var err error
	for _, idx := range g.entries {
		e := &a.st.entries[idx]
		if e.del != del || e.skip {
			continue
		}
		switch {
		case rows > 0:
			b = append(b, ',')
		case del:
			b = append(b, p.deletePrefix...)
		default:
			b = append(b, p.replacePrefix...)
		}
		if del {
			b, err = p.appendKey(b, e.image)
		} else {
			b, err = p.appendRow(b, e.image)
		}
		if err != nil {
			a.st.buf = b
			return &stmtError{table: p.ns, err: err}
		}
		rows++
		if rows >= maxRowsPerStatement || len(b) >= a.s.maxStmtBytes {
			if del {
				b = append(b, ')')
			}
			if err := a.exec(b, p.ns); err != nil {
				a.st.buf = b
				return err
			}
			b, rows = b[:0], 0
		}
	}
	if rows > 0 {
		if del {
			b = append(b, ')')
		}
		err = a.exec(b, p.ns)
	}
	a.st.buf = b[:0]
	return err
}

// appendKey appends the row key of image: v or (v1,v2).
func (p *tablePlan) appendKey(b []byte, image []any) ([]byte, error) {
	var err error
	if len(p.keyCols) == 1 {
		k := p.keyCols[0]
		return appendLiteral(b, image[k], &p.cols[k], true)
	}
	b = append(b, '(')
	for i, k := range p.keyCols {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendLiteral(b, image[k], &p.cols[k], true); err != nil {
			return b, err
		}
	}
	return append(b, ')'), nil
}

// appendRow appends (v1,v2,…) over the columns the target does not
// generate.
func (p *tablePlan) appendRow(b []byte, image []any) ([]byte, error) {
	var err error
	b = append(b, '(')
	first := true
	for i := range p.cols {
		cp := &p.cols[i]
		if cp.generated {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		if b, err = appendLiteral(b, image[i], cp, false); err != nil {
			return b, err
		}
	}
	return append(b, ')'), nil
}

// keyless applies a change of a table without row key, in order, by
// full-row match: DELETE … LIMIT 1 of the before-image, INSERT of the
// after-image.
func (a *applier) keyless(p *tablePlan, c *event.Change) error {
	if !p.allowed {
		return &stmtError{table: p.ns, err: fmt.Errorf(
			"table %s has no primary key and no NOT NULL unique key, so its rows cannot be applied replay-safely: add a primary key (on source and target), or list it in sink.allow_keyless_tables to apply it by full-row match", p.ns)}
	}
	var err error
	if c.Op == event.OpDelete || c.Op == event.OpUpdate {
		b, err := p.appendMatch(append(a.st.buf[:0], p.matchPrefix...), c.Before, false)
		if err != nil {
			a.st.buf = b[:0]
			return &stmtError{table: p.ns, err: err}
		}
		b = append(b, " LIMIT 1"...)
		a.st.buf = b[:0]
		if err := a.exec(b, p.ns); err != nil {
			return err
		}
	}
	if c.Op == event.OpInsert || c.Op == event.OpUpdate {
		b := append(a.st.buf[:0], p.insertPrefix...)
		if b, err = p.appendRow(b, c.After); err != nil {
			a.st.buf = b[:0]
			return &stmtError{table: p.ns, err: err}
		}
		a.st.buf = b[:0]
		if err := a.exec(b, p.ns); err != nil {
			return err
		}
	}
	return nil
}
