package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Proxies creates Links; one per test process is enough.
type Proxies struct {
	once   sync.Once
	server *toxiproxy.ApiServer
}

func (ps *Proxies) api() *toxiproxy.ApiServer {
	ps.once.Do(func() {
		// toxiproxy logs every accepted connection; the suite reports
		// faults itself.
		zerolog.SetGlobalLevel(zerolog.Disabled)
		ps.server = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	})
	return ps.server
}

// Link is a TCP proxy on 127.0.0.1 between hamal and one server. Faults are
// applied to every connection through it, in both directions.
type Link struct {
	Name string
	// Faults counts the faults injected through this link.
	Faults atomic.Int64

	proxy *toxiproxy.Proxy
	mu    sync.Mutex // serialises Cut and its Heal
}

// NewLink starts a proxy to upstream (host:port) on a free loopback port.
func (ps *Proxies) NewLink(name, upstream string) (*Link, error) {
	p := toxiproxy.NewProxy(ps.api(), name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start proxy %s to %s: %w", name, upstream, err)
	}
	return &Link{Name: name, proxy: p}, nil
}

// Addr is the address hamal connects to instead of the server's.
func (l *Link) Addr() string { return l.proxy.Listen }

// Close stops the proxy and drops its connections.
func (l *Link) Close() { l.proxy.Stop() }

// Heal ends a fault.
type Heal func()

// toxic adds one toxic per direction and returns the function removing them.
func (l *Link) toxic(kind string, attrs string) (Heal, error) {
	names := []string{}
	for _, stream := range []string{"upstream", "downstream"} {
		name := kind + "_" + stream
		body := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, kind, stream, attrs)
		if _, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
			for _, n := range names {
				_ = l.proxy.Toxics.RemoveToxic(context.Background(), n)
			}
			return nil, fmt.Errorf("link %s: add %s toxic: %w", l.Name, kind, err)
		}
		names = append(names, name)
	}
	l.Faults.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, n := range names {
				_ = l.proxy.Toxics.RemoveToxic(context.Background(), n)
			}
		})
	}, nil
}

// Latency delays every chunk by ms milliseconds in each direction.
func (l *Link) Latency(ms int) (Heal, error) {
	return l.toxic("latency", fmt.Sprintf(`{"latency":%d,"jitter":0}`, ms))
}

// Bandwidth caps each direction at kbps KB/s.
func (l *Link) Bandwidth(kbps int) (Heal, error) {
	return l.toxic("bandwidth", fmt.Sprintf(`{"rate":%d}`, kbps))
}

// ResetPeer resets (TCP RST) every connection as soon as data flows on it,
// including connections opened while the fault lasts.
func (l *Link) ResetPeer() (Heal, error) {
	return l.toxic("reset_peer", `{"timeout":0}`)
}

// Cut drops every connection of the link and refuses new ones until Heal:
// a full network cut between hamal and the server.
func (l *Link) Cut() Heal {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.proxy.Stop()
	l.Faults.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			// Start listens on the same port again: Listen holds the port
			// bound at first start.
			for i := 0; i < 50; i++ {
				if err := l.proxy.Start(); err == nil || errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
