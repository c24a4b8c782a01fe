package reshard

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/engine"
	enginemysql "github.com/hamal-replication/hamal/engine/mysql"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

// The migration's replication channels: catch-up (sources to targets) and
// reverse (targets to sources), their sinks, resume and stop.

type runningChannel struct {
	ch     *pipeline.Channel
	cancel context.CancelFunc
	done   chan struct{}
	// forward is a catch-up channel (a source → the targets); otherwise
	// reverse replication (a target → the sources).
	forward bool
	// from names the server the channel reads ("sources[0] 10.0.0.1:3306").
	from string
}

// startForward starts one catch-up channel per source, from its snapshot
// position (or its checkpoint).
func (m *Migration) startForward(ctx context.Context) error {
	m.mu.Lock()
	running := len(m.channels) > 0
	m.mu.Unlock()
	if running {
		return nil
	}
	routes := map[string]Route{}
	for _, t := range m.plan.Tables {
		routes[t.Name] = Route{Rename: t.Rename, Rule: t.rule, ShardKey: t.ShardKey}
	}
	for i := range m.plan.Sources {
		name := fmt.Sprintf("migrate-%s-fwd%d", m.plan.Name, i)
		src := m.plan.sourceConfig(i, m.st.Sources[i].Snapshot)
		env := engine.Env{Channel: name, Logger: m.log}
		// No loop guard forward: the catch-up is the targets' only writer
		// until the cut-over, and reverse replication starts after it (so
		// no site, and no conflict detection, on the targets).
		from := fmt.Sprintf("sources[%d] %s", i, m.plan.Sources[i].Addr)
		err := m.startChannel(ctx, name, from, nil, true, func(ctx context.Context, resume event.Position) (source.Source, error) {
			return src.Open(ctx, env, resume)
		}, func(ctx context.Context) (sink.Sink, error) {
			return m.openSinks(ctx, name, m.plan.Targets, "targets", "", enginemysql.Conflicts{}, routes)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// startReverse starts one channel per target back to the sources: a
// router in front of one sink per source, as the catch-up has in front of
// the targets, routing each row by the table's source_rule (the sources'
// own sharding) or, with one source, to it.
func (m *Migration) startReverse(ctx context.Context) error {
	routes := map[string]Route{}
	for _, t := range m.plan.Tables {
		rename := ""
		if t.Rename != "" {
			rename = t.Name
		}
		rt := Route{Rename: rename}
		if t.sourceRule != nil {
			rt.Rule, rt.ShardKey = t.sourceRule, t.SourceRule.ShardKey
		}
		routes[t.TargetName()] = rt
	}
	for j, tg := range m.plan.Targets {
		name := fmt.Sprintf("migrate-%s-rev%d", m.plan.Name, j)
		src := m.plan.reverseSourceConfig(j, m.st.Cutover.TargetStart[j])
		env := engine.Env{Channel: name, Site: m.plan.Sites.Target, Logger: m.log}
		guard, err := loopguard.New(m.plan.Sites.Target, m.plan.Sites.Source)
		if err != nil {
			return err
		}
		from := fmt.Sprintf("targets[%d] %s", j, tg.Addr)
		err = m.startChannel(ctx, name, from, guard, false, func(ctx context.Context, resume event.Position) (source.Source, error) {
			return src.Open(ctx, env, resume)
		}, func(ctx context.Context) (sink.Sink, error) {
			return m.openSinks(ctx, name, m.plan.Sources, "sources", m.plan.Sites.Source, m.plan.Conflicts, routes)
		})
		if err != nil {
			return err
		}
	}
	m.log.Info("reverse replication running (targets → sources)")
	return nil
}

// openSinks opens one sink per server through the MySQL driver (TLS and
// conflict rules as `hamal run` builds them), behind a router.
func (m *Migration) openSinks(ctx context.Context, channel string, servers []Server, what string, site string, conflicts enginemysql.Conflicts,
	routes map[string]Route) (sink.Sink, error) {
	sinks := make([]sink.Sink, 0, len(servers))
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = fmt.Sprintf("%s[%d] %s", what, i, s.Addr)
	}
	env := engine.Env{Channel: channel, Site: site, Workers: m.plan.Apply.Workers, Logger: m.log}
	for i, s := range servers {
		sc := &enginemysql.SinkConfig{Conn: s.Conn, HamalSchema: enginemysql.DefaultHamalSchema, Conflicts: conflicts}
		sk, err := sc.Open(ctx, env)
		if err != nil {
			for _, o := range sinks {
				o.Close()
			}
			return nil, fmt.Errorf("%s: %w", names[i], err)
		}
		sinks = append(sinks, sk)
	}
	return NewRouter(sinks, routes).Named(names), nil
}

func (m *Migration) startChannel(ctx context.Context, name, from string, guard *loopguard.Guard, forward bool,
	openSource func(context.Context, event.Position) (source.Source, error), openSink func(context.Context) (sink.Sink, error)) error {
	ch, err := pipeline.New(pipeline.Options{Name: name, OpenSource: openSource, OpenSink: openSink, Store: m.store,
		Guard: guard, Workers: m.plan.Apply.Workers, Window: m.plan.Apply.daemon().Window(),
		Logger: m.log, Registerer: m.channelRegisterer()})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	rc := &runningChannel{ch: ch, cancel: cancel, done: make(chan struct{}), forward: forward, from: from}
	go func() {
		defer close(rc.done)
		if err := ch.Run(cctx); err != nil {
			m.noteError(fmt.Errorf("channel %s: %w", name, err))
		}
	}()
	m.mu.Lock()
	m.channels = append(m.channels, rc)
	m.mu.Unlock()
	return nil
}

// ResumeChannels restarts every running channel that stopped in state
// error from its checkpoint (the channel's own POST /resume), and returns
// how many it restarted.
func (m *Migration) ResumeChannels() int {
	m.mu.Lock()
	chans := append([]*runningChannel(nil), m.channels...)
	m.mu.Unlock()
	n := 0
	for _, rc := range chans {
		if rc.ch.Status().State == pipeline.StateError {
			rc.ch.Resume()
			n++
		}
	}
	if n > 0 {
		m.log.Info("resumed channels in state error", "channels", n)
	}
	return n
}

// channelRegisterer is where a channel registers its metrics: the
// migration's registry, or none (a nil interface, not a nil *Registry). A
// channel started again under the same name (after a rollback attempt)
// registers its own metrics: stopChannels closed the previous one, which
// unregistered its.
func (m *Migration) channelRegisterer() prometheus.Registerer {
	if m.reg == nil {
		return nil
	}
	return m.reg
}

// stopChannels stops every running channel and waits for it to persist.
func (m *Migration) stopChannels() {
	m.mu.Lock()
	chans := m.channels
	m.channels = nil
	m.mu.Unlock()
	for _, rc := range chans {
		rc.cancel()
	}
	for _, rc := range chans {
		<-rc.done
		rc.ch.Close() // unregisters its metrics
	}
}
