package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	enginemysql "github.com/hamal-replication/hamal/engine/mysql"
	"github.com/hamal-replication/hamal/event"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// Report lists what a source committed after the channel's
// checkpoint that the target does not hold: after a lossy failover, the
// rows an operator must reconcile.
type Report struct {
	Channel        string   `json:"channel"`
	Source         string   `json:"source"`
	Target         string   `json:"target"`
	From           string   `json:"from"` // the channel's checkpoint
	To             string   `json:"to"`   // the source's binlog end when the report ran
	Transactions   int      `json:"transactions"`
	AlreadyApplied int      `json:"already_applied_rows"` // rows the target already holds as the source does
	Tables         []Table  `json:"tables"`
	DDL            []Change `json:"ddl,omitempty"`
}

// Table holds one table's unapplied rows.
type Table struct {
	Table string `json:"table"`
	Rows  []Row  `json:"rows"`
}

// Row is one row whose last source change the target lacks.
type Row struct {
	Key      string         `json:"key"`
	Owner    string         `json:"owner,omitempty"`
	Op       string         `json:"op"`    // the source's last change of the row
	State    string         `json:"state"` // missing | differs | still-present (deleted at the source)
	Source   map[string]any `json:"source"`
	Target   any            `json:"target"` // the target's row, null when absent
	Position string         `json:"position"`
}

// Change is a DDL the target has not run.
type Change struct {
	Statement string `json:"statement"`
	Position  string `json:"position"`
}

type rowTrack struct {
	table *event.Table
	key   string
	owner string
	op    event.Op
	image []any // after-image, or the before-image of a delete
	pos   string
}

// ErrUnsupported is matched (errors.Is) by Build's error when the channel's
// source or sink is not MySQL.
var ErrUnsupported = errors.New("failover-report supports MySQL sources and sinks")

// Build makes the report for the channel cfg configures, from its
// checkpoint to the source's current binlog end. log gets the warnings of
// the reader and the sink.
func Build(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Report, error) {
	src, ok := cfg.Source.Engine.(*enginemysql.SourceConfig)
	snkCfg, ok2 := cfg.Sink.Engine.(*enginemysql.SinkConfig)
	if !ok || !ok2 {
		return nil, fmt.Errorf("%w (source.kind %s, sink.kind %s)", ErrUnsupported, cfg.Source.Kind, cfg.Sink.Kind)
	}
	store, err := checkpoint.Open(cfg.Checkpoint.Dir)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint.dir %s (stop the channel first: the report reads its checkpoint): %w", cfg.Checkpoint.Dir, err)
	}
	cp, found, err := store.Load(cfg.Name)
	store.Close()
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("channel %s has no checkpoint in %s: nothing to compare from", cfg.Name, cfg.Checkpoint.Dir)
	}
	from, err := srcmysql.DecodePosition(cp.Pos)
	if err != nil {
		return nil, err
	}
	end, err := binlogEnd(ctx, src.Conn)
	if err != nil {
		return nil, err
	}
	rep := &Report{Channel: cfg.Name, Source: src.Endpoint(), Target: snkCfg.Endpoint(), From: cp.Pos.String(), To: end.String()}
	guard, err := cfg.LoopGuard()
	if err != nil {
		return nil, err
	}

	var rows []*rowTrack
	byKey := map[string]*rowTrack{}
	if end.After(from) {
		reader := *src
		reader.ServerID++ // the channel's own id may still be registered
		r, err := reader.OpenReader(ctx, engine.Env{Channel: cfg.Name, Logger: log}, cp.Pos)
		if err != nil {
			return nil, fmt.Errorf("read the source's binlog from the checkpoint: %w", err)
		}
		defer r.Close()
		for {
			txn, err := r.Next(ctx)
			if err != nil {
				return nil, fmt.Errorf("read the source's binlog at %s: %w", r.Position(), err)
			}
			pos, _ := srcmysql.DecodePosition(txn.Pos)
			if txn.Kind == event.KindHeartbeat {
				if !end.After(pos) {
					break
				}
				continue
			}
			if guard != nil && !guard.Admit(txn) {
				// Written at this site and relayed back: not a lost write.
			} else {
				rep.Transactions++
				if txn.Kind == event.KindDDL {
					rep.DDL = append(rep.DDL, Change{Statement: txn.DDL.Statement, Position: txn.Pos.String()})
				}
				for i := range txn.Changes {
					c := &txn.Changes[i]
					if c.Table == nil {
						continue
					}
					tr := trackRow(c, snkCfg.Unsynced[c.Table.Namespace()], txn.Pos.String())
					if prev, ok := byKey[tr.key]; ok {
						*prev = *tr
					} else {
						byKey[tr.key] = tr
						rows = append(rows, tr)
					}
				}
			}
			if !end.After(pos) {
				break
			}
		}
	}

	// Read-only (no lease), and no site: the report compares rows, it
	// writes no marker.
	snk, err := snkCfg.OpenApplier(ctx, engine.Env{Channel: cfg.Name, Workers: cfg.Apply.Workers, Logger: log}, true)
	if err != nil {
		return nil, fmt.Errorf("open the target: %w", err)
	}
	defer snk.Close()
	tables := map[string]*Table{}
	for _, tr := range rows {
		deleted := tr.op == event.OpDelete
		st, err := snk.CompareRow(ctx, tr.table, tr.image, deleted)
		if err != nil {
			return nil, fmt.Errorf("compare %s %s: %w", tr.table.Namespace(), tr.key, err)
		}
		if st.Same {
			rep.AlreadyApplied++
			continue
		}
		row := Row{Key: strings.TrimPrefix(tr.key, tr.table.Namespace()+" "), Owner: tr.owner, Op: tr.op.String(),
			Source: tr.table.ImageMap(tr.image), Position: tr.pos}
		switch {
		case deleted:
			row.State, row.Source = "still-present", nil
		case !st.Present:
			row.State = "missing"
		default:
			row.State = "differs"
		}
		if st.Present {
			row.Target = json.RawMessage(st.Image)
		}
		ns := tr.table.Namespace()
		if tables[ns] == nil {
			tables[ns] = &Table{Table: ns}
		}
		tables[ns].Rows = append(tables[ns].Rows, row)
	}
	for _, t := range tables {
		rep.Tables = append(rep.Tables, *t)
	}
	sort.Slice(rep.Tables, func(i, j int) bool { return rep.Tables[i].Table < rep.Tables[j].Table })
	return rep, nil
}

// trackRow turns a change into the row's latest source state.
func trackRow(c *event.Change, ownerCol, pos string) *rowTrack {
	tr := &rowTrack{table: c.Table, op: c.Op, image: c.After, pos: pos}
	if c.Op == event.OpDelete {
		tr.image = c.Before
	}
	var parts []string
	if key, ok := c.Table.RowKey(); ok {
		for _, k := range key {
			parts = append(parts, fmt.Sprintf("%s=%v", c.Table.Columns[k].Name, event.ReadableValue(tr.image[k])))
		}
	}
	tr.key = c.Table.Namespace() + " " + strings.Join(parts, ",")
	for i, col := range c.Table.Columns {
		if ownerCol != "" && strings.EqualFold(col.Name, ownerCol) && tr.image[i] != nil {
			tr.owner = fmt.Sprint(event.ReadableValue(tr.image[i]))
		}
	}
	return tr
}

// binlogEnd reads the source's current binlog end.
func binlogEnd(ctx context.Context, src enginemysql.Conn) (srcmysql.Position, error) {
	c, err := src.Connect(ctx)
	if err != nil {
		return srcmysql.Position{}, fmt.Errorf("connect to source.addr=%s: %w", src.Addr, err)
	}
	defer c.Close()
	r, err := c.Execute("SHOW MASTER STATUS")
	if err != nil {
		return srcmysql.Position{}, fmt.Errorf("SHOW MASTER STATUS on %s: %w", src.Addr, err)
	}
	if len(r.Values) == 0 {
		return srcmysql.Position{}, errors.New("the source has no binary log (log_bin is off)")
	}
	file, _ := r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	return srcmysql.Position{File: file, Pos: uint32(pos)}, nil
}

// Print writes the report as text: a summary, then one line per row.
func (rep *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "channel %s: %s → %s\nsource binlog from the checkpoint %s to %s: %d transactions not applied here or since applied\n",
		rep.Channel, rep.Source, rep.Target, rep.From, rep.To, rep.Transactions)
	n := 0
	for _, t := range rep.Tables {
		n += len(t.Rows)
	}
	fmt.Fprintf(w, "%d row(s) the target lacks; %d row(s) already equal\n", n, rep.AlreadyApplied)
	for _, d := range rep.DDL {
		fmt.Fprintf(w, "DDL not applied: %s (at %s)\n", d.Statement, d.Position)
	}
	if n == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTABLE\tKEY\tOWNER\tOP\tSTATE\tSOURCE\tTARGET")
	for _, t := range rep.Tables {
		for _, r := range t.Rows {
			src, _ := json.Marshal(r.Source)
			tgt, _ := json.Marshal(r.Target)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Table, r.Key, r.Owner, r.Op, r.State, shortJSON(src), shortJSON(tgt))
		}
	}
	tw.Flush()
}

func shortJSON(b []byte) string {
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}
