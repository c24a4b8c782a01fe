package reshard

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/tablecopy"
)

// VerifyReport is the result of one verify run.
type VerifyReport struct {
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt time.Time     `json:"finished_at"`
	Tables     []TableVerify `json:"tables"`
	Mismatches int           `json:"mismatches"` // rows differing, missing or extra, summed
	WrongShard int           `json:"wrong_shard"`
}

// TableVerify is one table's verify result.
type TableVerify struct {
	Table  string `json:"table"`
	Chunks int    `json:"chunks"`
	Rows   int64  `json:"rows"` // rows checked on the sources
	// Mismatched lists rows that still differed after the rechecks:
	// "missing" (on no target), "extra" (on a target, not on any source),
	// "differs" (contents), "duplicate" (on more than one target).
	Mismatched []RowMismatch `json:"mismatched,omitempty"`
	// WrongShard lists rows found on a target the rule does not name.
	WrongShard []RowMismatch `json:"wrong_shard,omitempty"`
}

// RowMismatch names one row.
type RowMismatch struct {
	Key    string `json:"key"`
	Kind   string `json:"kind"`
	Target int    `json:"target,omitempty"`
}

const maxReportedRows = 50

type side struct {
	conn  *client.Conn
	table string // qualified
}

// Verify compares every table chunk by chunk: for each PK range, the XOR
// of the per-row hashes and the row count over the sources must equal the
// same over the targets. A chunk that differs is compared again after
// Verify.RecheckDelay, up to Verify.Rechecks times (writes continue, so it
// may differ only by lag); what still differs is resolved to keys. Then
// each target is checked for rows its rule does not send there.
func (m *Migration) Verify(ctx context.Context) (*VerifyReport, error) {
	rep := &VerifyReport{StartedAt: time.Now().UTC()}
	var srcs, tgts []*client.Conn
	defer func() {
		for _, c := range append(srcs, tgts...) {
			c.Close()
		}
	}()
	for i, s := range m.plan.Sources {
		c, err := dial(ctx, fmt.Sprintf("sources[%d]", i), s)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, c)
	}
	for i, s := range m.plan.Targets {
		c, err := dial(ctx, fmt.Sprintf("targets[%d]", i), s)
		if err != nil {
			return nil, err
		}
		tgts = append(tgts, c)
	}
	for ti := range m.plan.Tables {
		t := &m.plan.Tables[ti]
		tv, err := m.verifyTable(ctx, t, srcs, tgts)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", t.Name, err)
		}
		rep.Tables = append(rep.Tables, *tv)
		rep.Mismatches += len(tv.Mismatched)
		rep.WrongShard += len(tv.WrongShard)
	}
	rep.FinishedAt = time.Now().UTC()
	return rep, nil
}

func (m *Migration) verifyTable(ctx context.Context, t *Table, srcs, tgts []*client.Conn) (*TableVerify, error) {
	info := m.infos[t.Name]
	tv := &TableVerify{Table: t.Name}
	k := info.table.Key
	pk := k.List()
	hash := tablecopy.RowHash(info.table.Columns)
	// Chunk bounds come from the source with the most rows; the last
	// chunk is open above, so every key of every side falls in a chunk.
	boundSrc := 0
	var most int64 = -1
	for i, c := range srcs {
		n, err := queryString(c, "SELECT COUNT(*) FROM "+qualified(t.Name))
		if err != nil {
			return nil, err
		}
		v, _ := strconv.ParseInt(n, 10, 64)
		if v > most {
			most, boundSrc = v, i
		}
	}
	type chunk struct{ lo, hi []string } // (lo, hi] key tuples; nil unbounded
	var chunks []chunk
	var lo []string
	for {
		q := "SELECT " + pk + " FROM " + qualified(t.Name) + k.RangeWhere(lo, nil) +
			" ORDER BY " + pk + " LIMIT 1 OFFSET " + strconv.Itoa(m.plan.Verify.ChunkRows-1)
		r, err := srcs[boundSrc].Execute(q)
		if err != nil {
			return nil, err
		}
		if len(r.Values) == 0 {
			chunks = append(chunks, chunk{lo: lo})
			break
		}
		hi := k.Values(r.Values[0], false)
		chunks = append(chunks, chunk{lo: lo, hi: hi})
		lo = hi
	}
	where := func(c chunk) string { return k.RangeWhere(c.lo, c.hi) }
	sum := func(conns []*client.Conn, table string, c chunk) (int64, uint64, error) {
		var n int64
		var x uint64
		for _, conn := range conns {
			r, err := conn.Execute("SELECT COUNT(*), IFNULL(BIT_XOR(" + hash + "),0) FROM " + qualified(table) + where(c))
			if err != nil {
				return 0, 0, err
			}
			cnt, _ := r.GetInt(0, 0)
			h, _ := r.GetUint(0, 1)
			n += cnt
			x ^= h
		}
		return n, x, nil
	}
	var bad []chunk
	for _, c := range chunks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sn, sx, err := sum(srcs, t.Name, c)
		if err != nil {
			return nil, err
		}
		tn, tx, err := sum(tgts, t.TargetName(), c)
		if err != nil {
			return nil, err
		}
		tv.Chunks++
		tv.Rows += sn
		m.verifiedRows.Add(sn)
		if sn != tn || sx != tx {
			bad = append(bad, c)
		}
	}
	for attempt := 0; attempt < m.plan.Verify.Rechecks && len(bad) > 0; attempt++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(m.plan.Verify.RecheckDelay):
		}
		var still []chunk
		for _, c := range bad {
			sn, sx, err := sum(srcs, t.Name, c)
			if err != nil {
				return nil, err
			}
			tn, tx, err := sum(tgts, t.TargetName(), c)
			if err != nil {
				return nil, err
			}
			if sn != tn || sx != tx {
				still = append(still, c)
			}
		}
		bad = still
	}
	// Resolve what still differs to keys.
	rows := func(conns []*client.Conn, table string, c chunk) (map[string]uint64, map[string][]int, error) {
		out := map[string]uint64{}
		at := map[string][]int{}
		for i, conn := range conns {
			r, err := conn.Execute("SELECT " + pk + ", " + hash + " FROM " + qualified(table) + where(c))
			if err != nil {
				return nil, nil, err
			}
			for j := range r.Values {
				key := tablecopy.ShowKey(k.Values(r.Values[j], false))
				h, _ := r.GetUint(j, len(k.Columns))
				out[key] = h
				at[key] = append(at[key], i)
			}
		}
		return out, at, nil
	}
	for _, c := range bad {
		src, _, err := rows(srcs, t.Name, c)
		if err != nil {
			return nil, err
		}
		dst, at, err := rows(tgts, t.TargetName(), c)
		if err != nil {
			return nil, err
		}
		var found []RowMismatch
		for k, h := range src {
			switch dh, ok := dst[k]; {
			case !ok:
				found = append(found, RowMismatch{Key: k, Kind: "missing"})
			case len(at[k]) > 1:
				found = append(found, RowMismatch{Key: k, Kind: "duplicate", Target: at[k][0]})
			case dh != h:
				found = append(found, RowMismatch{Key: k, Kind: "differs", Target: at[k][0]})
			}
		}
		for k := range dst {
			if _, ok := src[k]; !ok {
				found = append(found, RowMismatch{Key: k, Kind: "extra", Target: at[k][0]})
			}
		}
		sort.Slice(found, func(i, j int) bool { return found[i].Key < found[j].Key })
		for _, f := range found {
			if len(tv.Mismatched) < maxReportedRows {
				tv.Mismatched = append(tv.Mismatched, f)
			}
		}
	}
	// Rows on the wrong shard, by the rule's own SQL predicate.
	for j, conn := range tgts {
		col := quoteIdent(t.ShardKey)
		r, err := conn.Execute("SELECT " + pk + " FROM " + qualified(t.TargetName()) +
			" WHERE NOT IFNULL(" + t.rule.Predicate(col, j) + ", FALSE) ORDER BY " + pk + " LIMIT " + strconv.Itoa(maxReportedRows))
		if err != nil {
			return nil, err
		}
		for i := range r.Values {
			tv.WrongShard = append(tv.WrongShard, RowMismatch{Key: tablecopy.ShowKey(k.Values(r.Values[i], false)), Kind: "wrong_shard", Target: j})
		}
	}
	return tv, nil
}
