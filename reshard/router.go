package reshard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/shardrule"
	"github.com/hamal-replication/hamal/sink"
)

var _ sink.Sink = (*Router)(nil)

// Route says where one source table's changes go.
type Route struct {
	// Rename is the destination "schema.table" ("" keeps the name).
	Rename string
	// Rule picks the sink of a row by its shard key; nil sends every row to
	// sink 0.
	Rule     shardrule.Rule
	ShardKey string
}

// Router is a sink.Sink in front of N sinks: it splits each batch by the
// routes' rules and applies the parts to their sinks in parallel.
//
// An update that moves a row to another sink (its shard key changed) turns
// into a delete on the old sink and an insert on the new one; both are
// replay-safe, so the pair is too. DDL goes to every sink. A batch succeeds
// only when every part did; on error the whole batch is retried or fails,
// which replay-safe sinks allow.
type Router struct {
	sinks  []sink.Sink
	names  []string         // how errors name each sink; see Named
	routes map[string]Route // by lower-case source namespace

	mu      sync.Mutex
	renamed map[*event.Table]renamedTable
}

type renamedTable struct {
	table  *event.Table
	ns     string
	keyIdx int
}

// NewRouter returns a router over sinks; routes are keyed "schema.table".
func NewRouter(sinks []sink.Sink, routes map[string]Route) *Router {
	r := &Router{sinks: sinks, routes: map[string]Route{}, renamed: map[*event.Table]renamedTable{}}
	for ns, rt := range routes {
		r.routes[strings.ToLower(ns)] = rt
	}
	return r
}

// Named sets how errors name the sinks ("sources[0] 10.0.0.1:3306"), in
// sink order; without it a sink is "sink <i>".
func (r *Router) Named(names []string) *Router {
	r.names = names
	return r
}

func (r *Router) sinkName(i int) string {
	if i < len(r.names) {
		return r.names[i]
	}
	return fmt.Sprintf("sink %d", i)
}

// table returns the destination description of a source table.
func (r *Router) table(t *event.Table) (renamedTable, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt, ok := r.renamed[t]; ok {
		return rt, nil
	}
	route, ok := r.routes[strings.ToLower(t.Namespace())]
	if !ok {
		return renamedTable{}, fmt.Errorf("table %s is not in the migration plan", t.Namespace())
	}
	out := renamedTable{table: t, ns: t.Namespace(), keyIdx: -1}
	if route.Rename != "" {
		schema, name, _ := splitName(route.Rename)
		c := *t
		c.Schema, c.Name = schema, name
		out.table, out.ns = &c, route.Rename
	}
	if route.Rule != nil {
		for i, col := range t.Columns {
			if strings.EqualFold(col.Name, route.ShardKey) {
				out.keyIdx = i
			}
		}
		if out.keyIdx < 0 {
			return renamedTable{}, fmt.Errorf("table %s has no shard-key column %s in the binlog (was it dropped?)", t.Namespace(), route.ShardKey)
		}
	}
	r.renamed[t] = out
	return out, nil
}

func (r *Router) shard(t *event.Table, rt renamedTable, image []any) (int, error) {
	route := r.routes[strings.ToLower(t.Namespace())]
	if route.Rule == nil {
		return 0, nil
	}
	if rt.keyIdx >= len(image) {
		return 0, fmt.Errorf("table %s: row image lacks the shard-key column", t.Namespace())
	}
	return route.Rule.Shard(image[rt.keyIdx])
}

// split returns each sink's part of txn (nil where it has none).
func (r *Router) split(txn *event.Txn) ([]*event.Txn, error) {
	parts := make([]*event.Txn, len(r.sinks))
	if txn.Kind == event.KindDDL {
		if txn.DDL != nil {
			for ns, rt := range r.routes {
				_, name, _ := splitName(ns)
				if rt.Rename != "" && strings.Contains(strings.ToLower(txn.DDL.Statement), name) {
					return nil, fmt.Errorf("DDL at %s touches %s, which the plan renames: apply it on the targets by hand (with the new name), then skip it: %s",
						txn.Pos, ns, txn.DDL.Statement)
				}
			}
		}
		for i := range parts {
			parts[i] = txn
		}
		return parts, nil
	}
	add := func(i int, c event.Change) {
		if parts[i] == nil {
			p := *txn
			p.Changes = nil
			parts[i] = &p
		}
		parts[i].Changes = append(parts[i].Changes, c)
	}
	for _, c := range txn.Changes {
		if c.Table == nil {
			return nil, fmt.Errorf("change to %s at %s has no table description", c.Namespace, txn.Pos)
		}
		rt, err := r.table(c.Table)
		if err != nil {
			return nil, fmt.Errorf("at %s: %w", txn.Pos, err)
		}
		src := c.Table
		c.Table, c.Namespace = rt.table, rt.ns
		switch c.Op {
		case event.OpInsert:
			s, err := r.shard(src, rt, c.After)
			if err != nil {
				return nil, fmt.Errorf("route insert into %s at %s: %w", src.Namespace(), txn.Pos, err)
			}
			add(s, c)
		case event.OpDelete:
			s, err := r.shard(src, rt, c.Before)
			if err != nil {
				return nil, fmt.Errorf("route delete from %s at %s: %w", src.Namespace(), txn.Pos, err)
			}
			add(s, c)
		case event.OpUpdate:
			from, err := r.shard(src, rt, c.Before)
			if err != nil {
				return nil, fmt.Errorf("route update of %s at %s: %w", src.Namespace(), txn.Pos, err)
			}
			to, err := r.shard(src, rt, c.After)
			if err != nil {
				return nil, fmt.Errorf("route update of %s at %s: %w", src.Namespace(), txn.Pos, err)
			}
			if from == to {
				add(to, c)
				continue
			}
			// The row moves: delete it where it was, insert it where it goes.
			add(from, event.Change{Op: event.OpDelete, Namespace: c.Namespace, Table: c.Table, Before: c.Before})
			add(to, event.Change{Op: event.OpInsert, Namespace: c.Namespace, Table: c.Table, After: c.After})
		default:
			return nil, fmt.Errorf("change %s to %s at %s cannot be routed", c.Op, src.Namespace(), txn.Pos)
		}
	}
	return parts, nil
}

// Apply implements sink.Sink.
func (r *Router) Apply(ctx context.Context, batch []*event.Txn) error {
	per := make([][]*event.Txn, len(r.sinks))
	for _, txn := range batch {
		parts, err := r.split(txn)
		if err != nil {
			return err
		}
		for i, p := range parts {
			if p != nil {
				per[i] = append(per[i], p)
			}
		}
	}
	errs := make([]error, len(r.sinks))
	var wg sync.WaitGroup
	for i, part := range per {
		if len(part) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.sinks[i].Apply(ctx, part); err != nil {
				errs[i] = fmt.Errorf("%s: %w", r.sinkName(i), err)
			}
		}()
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil {
		return nil
	}
	for _, e := range errs {
		if e != nil && !retry.IsTransient(e) {
			return err // one fatal part makes the batch fatal
		}
	}
	return retry.Transient(err)
}

// Close implements sink.Sink.
func (r *Router) Close() error {
	var errs []error
	for _, s := range r.sinks {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
