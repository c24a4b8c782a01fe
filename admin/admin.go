// Package admin serves a channel's HTTP admin API: Prometheus metrics,
// liveness and readiness, a JSON status, and pause/resume.
//
//	GET  /         status page (one embedded HTML file polling /status)
//	GET  /metrics  Prometheus exposition
//	GET  /healthz  200 while the process serves requests
//	GET  /readyz   200 while the channel is running (or paused by an
//	               operator); 503 with the state and last error otherwise
//	GET  /status   JSON status (pipeline.Status)
//	POST /pause    stop applying; reading stops when the window is full
//	POST /resume   undo pause; restart a channel in state "error"
//	GET  /debug/pprof/…  net/http/pprof, only with admin.pprof: true
//	               (Options.Pprof; off by default)
//
// Who may do what (the same rules serve the migration's API, see Auth and
// Listen):
//
//   - With a token (admin.token or admin.token_file) every mutating
//     endpoint requires "Authorization: Bearer <token>", compared in
//     constant time. Without one the listener must be loopback: Listen
//     refuses any other address, naming the fix.
//   - Error texts may hold row data (a duplicate key's value, a
//     command's arguments): a response to a request without the token
//     has them redacted (package redact); the log keeps the full text.
//   - Browsers: a cross-origin POST is refused (net/http's
//     CrossOriginProtection), and on loopback a request naming a Host
//     other than a loopback address or localhost is refused (a DNS
//     rebinding page cannot reach the API).
//   - Profiles (admin.pprof): served only on a loopback listener or, with
//     a token, to requests carrying it, since a profile and the goroutine
//     dump show the process's internals. A CPU profile must be shorter
//     than the server's write timeout: /debug/pprof/profile?seconds=20.
//   - The server bounds headers, reads, writes and idle connections.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/pipeline"
)

// Channel is what the admin API needs of a running channel.
type Channel interface {
	Status() pipeline.Status
	Pause()
	Resume()
}

// Handler returns the admin API's HTTP handler without a token.
func Handler(ch Channel, gatherer prometheus.Gatherer) http.Handler {
	return NewHandler(ch, gatherer, Options{})
}

// Options configures the admin API.
type Options struct {
	// Token, when set, is required as a bearer token on POST endpoints
	// and shows error texts in full.
	Token string
	// Pprof serves net/http/pprof under /debug/pprof/ (admin.pprof), to
	// the token's holders only when Token is set (Listen allows no token
	// only on loopback).
	Pprof bool
}

// Auth is the token rule of an admin API.
type Auth struct {
	// Token is admin.token; "" means none (a loopback listener only).
	Token string
}

// Authorized reports whether r carries the token. Without a token
// nobody is authorized: mutations are then allowed on loopback
// (Require), full error texts are not.
func (a Auth) Authorized(r *http.Request) bool {
	if a.Token == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) == 1
}

// Require wraps a mutating endpoint: with a token, a request without it
// is refused with 401.
func (a Auth) Require(next http.Handler) http.Handler {
	if a.Token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hamal"`)
			http.Error(w, "admin.token is set: send Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// NewHandler returns the admin API's HTTP handler.
func NewHandler(ch Channel, gatherer prometheus.Gatherer, opts Options) http.Handler {
	auth := Auth{Token: opts.Token}
	status := func(r *http.Request) pipeline.Status {
		st := ch.Status()
		if !auth.Authorized(r) {
			st = st.Redact()
		}
		return st
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", servePage)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := status(r)
		if st.State == pipeline.StateRunning || st.State == pipeline.StatePaused {
			fmt.Fprintln(w, st.State)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "%s %s\n", st.State, st.LastError)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, status(r))
	})
	mux.Handle("POST /pause", auth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch.Pause()
		writeJSON(w, status(r))
	})))
	mux.Handle("POST /resume", auth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch.Resume()
		writeJSON(w, status(r))
	})))
	if opts.Pprof {
		// Profiles show the process's internals: with a token, only to
		// its holders, as for mutations (without one Listen serves
		// loopback only).
		for path, h := range map[string]http.HandlerFunc{"/debug/pprof/": pprof.Index, "/debug/pprof/cmdline": pprof.Cmdline,
			"/debug/pprof/profile": pprof.Profile, "/debug/pprof/symbol": pprof.Symbol, "/debug/pprof/trace": pprof.Trace} {
			mux.Handle("GET "+path, auth.Require(h))
		}
	}
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Server limits (Listen).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	// DefaultWriteTimeout bounds writing a response. The migration's API
	// answers a cut-over only once it is fenced and sets its own.
	DefaultWriteTimeout = 30 * time.Second
)

// ErrOpenListener is Listen's refusal of a non-loopback address without a
// token.
var ErrOpenListener = errors.New("admin API open to the network without a token")

// ServeOptions configures Listen.
type ServeOptions struct {
	// Token is the token the handler requires (Auth.Token); without one
	// Listen binds loopback addresses only.
	Token string
	// WriteTimeout bounds writing a response; 0: DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// Server is a started admin endpoint.
type Server struct {
	Addr string // the bound address (useful with port 0)
	srv  *http.Server
	done chan error
}

// Listen binds addr and serves h in the background, with the limits
// above, refusing cross-origin browser POSTs and, on loopback, requests
// for another host. Without a token it refuses an address that is not
// loopback (ErrOpenListener, naming the fix).
func Listen(addr string, h http.Handler, o ServeOptions) (*Server, error) {
	loopback := config.IsLoopback(addr)
	if !loopback && o.Token == "" {
		return nil, fmt.Errorf("%w: admin.listen %s is not a loopback address and no admin.token is set, so anyone who can reach it could steer the channel; set admin.token_file (or admin.token), or listen on 127.0.0.1", ErrOpenListener, addr)
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	h = http.NewCrossOriginProtection().Handler(h)
	if loopback {
		h = loopbackHostOnly(h)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen on %s: %w (set admin.listen to a free host:port, or \"off\")", addr, err)
	}
	s := &Server{Addr: l.Addr().String(), done: make(chan error, 1),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
			WriteTimeout: o.WriteTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}}
	go func() {
		err := s.srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// loopbackHostOnly refuses requests whose Host is not a loopback address
// or localhost: a listener on loopback serves this host only, and a
// browser page whose name an attacker points at 127.0.0.1 (DNS
// rebinding) names another host.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !config.IsLoopback(net.JoinHostPort(host, "0")) {
			http.Error(w, "this admin API listens on loopback: address it as 127.0.0.1 or localhost", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Close stops serving, waiting up to 5 s for requests in progress.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if e := <-s.done; err == nil {
		err = e
	}
	return err
}
