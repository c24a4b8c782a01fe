package main

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
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/event"
	sinkmysql "github.com/hamal-replication/hamal/sink/mysql"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// FailoverReport lists what a source committed after the channel's
// checkpoint that the target does not hold: after a lossy failover, the
// rows an operator must reconcile.
type FailoverReport struct {
	Channel        string           `json:"channel"`
	Source         string           `json:"source"`
	Target         string           `json:"target"`
	From           string           `json:"from"` // the channel's checkpoint
	To             string           `json:"to"`   // the source's binlog end when the report ran
	Transactions   int              `json:"transactions"`
	AlreadyApplied int              `json:"already_applied_rows"` // rows the target already holds as the source does
	Tables         []FailoverTable  `json:"tables"`
	DDL            []FailoverChange `json:"ddl,omitempty"`
}

// FailoverTable holds one table's unapplied rows.
type FailoverTable struct {
	Table string        `json:"table"`
	Rows  []FailoverRow `json:"rows"`
}

// FailoverRow is one row whose last source change the target lacks.
type FailoverRow struct {
	Key      string         `json:"key"`
	Owner    string         `json:"owner,omitempty"`
	Op       string         `json:"op"`    // the source's last change of the row
	State    string         `json:"state"` // missing | differs | still-present (deleted at the source)
	Source   map[string]any `json:"source"`
	Target   any            `json:"target"` // the target's row, null when absent
	Position string         `json:"position"`
}

// FailoverChange is a DDL the target has not run.
type FailoverChange struct {
	Statement string `json:"statement"`
	Position  string `json:"position"`
}

func cmdFailoverReport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("failover-report", "failover-report --config FILE [--json]", stdout, stderr)
	path := fs.String("config", "", "the config of the channel from the site that failed (its source) to this site")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 2
	}
	if cfg.Source.Kind != "mysql" || cfg.Sink.Kind != "mysql" {
		fmt.Fprintln(stderr, "hamal: failover-report supports MySQL sources and sinks")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// Only warnings: the report is the output.
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := failoverReport(ctx, cfg, quiet)
	if err != nil {
		fmt.Fprintf(stderr, "hamal: failover-report: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return 0
	}
	printFailoverReport(stdout, rep)
	return 0
}

type rowTrack struct {
	table *event.Table
	key   string
	owner string
	op    event.Op
	image []any // after-image, or the before-image of a delete
	pos   string
}

func failoverReport(ctx context.Context, cfg *config.Config, quiet *slog.Logger) (*FailoverReport, error) {
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
	end, err := binlogEnd(cfg)
	if err != nil {
		return nil, err
	}
	rep := &FailoverReport{Channel: cfg.Name, Source: cfg.Source.Addr, Target: cfg.Sink.Addr, From: cp.Pos.String(), To: end.String()}
	guard, err := loopGuard(cfg)
	if err != nil {
		return nil, err
	}

	var rows []*rowTrack
	byKey := map[string]*rowTrack{}
	if end.After(from) {
		sc, err := mysqlSourceConfig(cfg)
		if err != nil {
			return nil, err
		}
		sc.ServerID = cfg.Source.ServerID + 1 // the channel's own id may still be registered
		sc.Logger = quiet
		r, err := srcmysql.Open(ctx, sc, cp.Pos)
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
					rep.DDL = append(rep.DDL, FailoverChange{Statement: txn.DDL.Statement, Position: txn.Pos.String()})
				}
				for i := range txn.Changes {
					c := &txn.Changes[i]
					if c.Table == nil {
						continue
					}
					tr := trackRow(c, cfg.Sink.Unsynced[c.Table.Namespace()], txn.Pos.String())
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

	sc, err := mysqlSinkConfig(cfg)
	if err != nil {
		return nil, err
	}
	sc.SkipLease = true
	sc.Site = ""
	sc.Logger = quiet
	snk, err := sinkmysql.Open(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("open the target: %w", err)
	}
	defer snk.Close()
	tables := map[string]*FailoverTable{}
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
		row := FailoverRow{Key: strings.TrimPrefix(tr.key, tr.table.Namespace()+" "), Owner: tr.owner, Op: tr.op.String(),
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
			tables[ns] = &FailoverTable{Table: ns}
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
func binlogEnd(cfg *config.Config) (srcmysql.Position, error) {
	c, err := client.Connect(cfg.Source.Addr, cfg.Source.User, cfg.Source.Password, "")
	if err != nil {
		return srcmysql.Position{}, fmt.Errorf("connect to source.addr=%s: %w", cfg.Source.Addr, err)
	}
	defer c.Close()
	r, err := c.Execute("SHOW MASTER STATUS")
	if err != nil {
		return srcmysql.Position{}, fmt.Errorf("SHOW MASTER STATUS on %s: %w", cfg.Source.Addr, err)
	}
	if len(r.Values) == 0 {
		return srcmysql.Position{}, errors.New("the source has no binary log (log_bin is off)")
	}
	file, _ := r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	return srcmysql.Position{File: file, Pos: uint32(pos)}, nil
}

func printFailoverReport(w io.Writer, rep *FailoverReport) {
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
