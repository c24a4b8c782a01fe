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
//
// It binds to loopback unless configured otherwise. With a token
// (admin.token), the mutating endpoints require "Authorization: Bearer
// <token>"; the read-only ones stay open to the host or pod network.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	// Token, when set, is required as a bearer token on POST endpoints.
	Token string
}

// NewHandler returns the admin API's HTTP handler.
func NewHandler(ch Channel, gatherer prometheus.Gatherer, opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", servePage)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := ch.Status()
		if st.State == pipeline.StateRunning || st.State == pipeline.StatePaused {
			fmt.Fprintln(w, st.State)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "%s %s\n", st.State, st.LastError)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, ch.Status())
	})
	mux.Handle("POST /pause", requireToken(opts.Token, func(w http.ResponseWriter, r *http.Request) {
		ch.Pause()
		writeJSON(w, ch.Status())
	}))
	mux.Handle("POST /resume", requireToken(opts.Token, func(w http.ResponseWriter, r *http.Request) {
		ch.Resume()
		writeJSON(w, ch.Status())
	}))
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Server is a started admin endpoint.
type Server struct {
	Addr string // the bound address (useful with port 0)
	srv  *http.Server
	done chan error
}

// Listen binds addr and serves h in the background.
func Listen(addr string, h http.Handler) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen on %s: %w (set admin.listen to a free host:port, or \"off\")", addr, err)
	}
	s := &Server{Addr: l.Addr().String(), done: make(chan error, 1),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		err := s.srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
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
