// Package netfault puts a toxiproxy TCP proxy on 127.0.0.1 between a
// client under test and one server, and injects network faults on it:
// Cut (every connection dropped, new ones refused: the server sees the
// client's sessions end) and Hold (every byte from the client to the
// server held in the network, the connections open, until Release: a
// silent partition that heals, delivering what was held). Held reports
// how much is held, so a test waits for "the client's request is in
// flight" as a condition instead of sleeping.
//
//	link := netfault.Start(t, server.Addr)
//	c := connect(link.Addr())
//	hold := link.Hold(t)
//	go send(c)                                        // in flight, held
//	harness.WaitFor(ctx, d, func() (bool, error) { return hold.Held() > 0, nil })
//	link.Cut()                                        // or act on the server meanwhile
//	hold.Release()                                    // the held bytes arrive
package netfault

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
)

// Link is one proxy to one upstream server.
type Link struct {
	proxy *toxiproxy.Proxy
	mu    sync.Mutex
	cut   bool
}

var (
	registerOnce sync.Once
	gates        sync.Map // gate name → *Hold
	gateSeq      atomic.Int64
)

// Start starts a proxy to upstream (host:port) on a free loopback port;
// it stops when the test ends.
func Start(t testing.TB, upstream string) *Link {
	t.Helper()
	registerOnce.Do(func() { toxics.Register("hamal_hold", new(holdToxic)) })
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	name := fmt.Sprintf("netfault-%d", gateSeq.Add(1))
	p := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("netfault: start proxy to %s: %v", upstream, err)
	}
	l := &Link{proxy: p}
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.cut {
			p.Stop()
		}
	})
	return l
}

// Addr is the address the client connects to instead of upstream.
func (l *Link) Addr() string { return l.proxy.Listen }

// Cut drops every connection through the link and refuses new ones, for
// good: both ends see the connections close.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.cut {
		l.cut = true
		l.proxy.Stop()
	}
}

// Hold holds every byte the client sends toward the server, on every
// connection through the link (open or opened later), until Release.
func (l *Link) Hold(t testing.TB) *Hold {
	t.Helper()
	h := &Hold{link: l, name: fmt.Sprintf("hold-%d", gateSeq.Add(1))}
	gates.Store(h.name, h)
	body := fmt.Sprintf(`{"name":%q,"type":"hamal_hold","stream":"upstream","toxicity":1,"attributes":{"gate":%q}}`, h.name, h.name)
	if _, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		t.Fatalf("netfault: add hold: %v", err)
	}
	t.Cleanup(h.Release)
	return h
}

// Hold is a Link's held traffic.
type Hold struct {
	link     *Link
	name     string
	held     atomic.Int64
	released sync.Once
}

// Held returns how many bytes are held (so far, on every connection).
func (h *Hold) Held() int64 { return h.held.Load() }

// Release delivers what is held, in order, and lets traffic through again.
func (h *Hold) Release() {
	h.released.Do(func() {
		_ = h.link.proxy.Toxics.RemoveToxic(context.Background(), h.name)
		gates.Delete(h.name)
	})
}

// holdToxic holds the chunks of one connection's direction until it is
// removed (the stub's Interrupt), then forwards them.
type holdToxic struct {
	Gate string `json:"gate"`
}

func (x *holdToxic) Pipe(stub *toxics.ToxicStub) {
	var held []*stream.StreamChunk
	flush := func() {
		for _, c := range held {
			stub.Output <- c
		}
		held = nil
	}
	for {
		select {
		case <-stub.Interrupt:
			flush()
			return
		case c := <-stub.Input:
			if c == nil {
				flush()
				stub.Close()
				return
			}
			held = append(held, c)
			if g, ok := gates.Load(x.Gate); ok {
				g.(*Hold).held.Add(int64(len(c.Data)))
			}
		}
	}
}
