package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

// TestAdminAPI serves a real (not started) channel and checks every
// endpoint's contract: the status fields operators and `hamal status` rely
// on, readiness by state, pause/resume, and the metric names.
func TestAdminAPI(t *testing.T) {
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Save("shard1", checkpoint.Checkpoint{Pos: event.Position(`{"gtid":"0-1-7"}`)}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	never := errors.New("not started in this test")
	ch, err := pipeline.New(pipeline.Options{Name: "shard1", Store: store, Registerer: reg,
		OpenSource: func(context.Context, event.Position) (source.Source, error) { return nil, never },
		OpenSink:   func(context.Context) (sink.Sink, error) { return nil, never }})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen("127.0.0.1:0", Handler(ch, reg))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr

	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := get("GET", "/status")
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
		t.Fatalf("/status: %d %q %v", code, body, err)
	}
	for _, field := range []string{"name", "state", "source_position", "checkpoint_position", "lag_seconds", "applied_txns", "applied_rows", "in_flight", "last_error"} {
		if _, ok := st[field]; !ok {
			t.Errorf("/status lacks %q: %s", field, body)
		}
	}
	if st["name"] != "shard1" || st["state"] != "starting" || st["checkpoint_position"] != `{"gtid":"0-1-7"}` {
		t.Errorf("/status = %s", body)
	}
	if code, _ := get("GET", "/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get("GET", "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("/readyz while starting = %d %q, want 503", code, body)
	}
	if code, _ := get("GET", "/pause"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /pause = %d, want 405", code)
	}
	if code, _ := get("POST", "/pause"); code != 200 {
		t.Errorf("POST /pause = %d", code)
	}
	if code, _ := get("POST", "/resume"); code != 200 {
		t.Errorf("POST /resume = %d", code)
	}
	_, metrics := get("GET", "/metrics")
	for _, name := range []string{`hamal_replication_lag_seconds{channel="shard1"}`, `hamal_applied_txns_total{channel="shard1",kind="dml"}`,
		`hamal_dag_ready_txns{channel="shard1"}`, `hamal_channel_state{channel="shard1",state="starting"} 1`, `hamal_dag_inflight_txns{channel="shard1"}`, `hamal_source_connected{channel="shard1"}`} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// TestTokenGuardsMutations checks that with a token only POSTs carrying it
// reach the channel, while the read-only endpoints and the page stay open.
func TestTokenGuardsMutations(t *testing.T) {
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	never := errors.New("not started in this test")
	ch, err := pipeline.New(pipeline.Options{Name: "tok", Store: store, Registerer: reg,
		OpenSource: func(context.Context, event.Position) (source.Source, error) { return nil, never },
		OpenSink:   func(context.Context) (sink.Sink, error) { return nil, never }})
	if err != nil {
		t.Fatal(err)
	}
	const token = "s3cr3t-t0ken"
	srv, err := Listen("127.0.0.1:0", NewHandler(ch, reg, Options{Token: token}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	do := func(method, path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+srv.Addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		method, path, auth string
		want               int
		paused             bool
	}{
		{"POST", "/pause", "", http.StatusUnauthorized, false},
		{"POST", "/pause", "Bearer wrong", http.StatusUnauthorized, false},
		{"POST", "/pause", token, http.StatusUnauthorized, false}, // no "Bearer "
		{"POST", "/pause", "Bearer " + token, http.StatusOK, true},
		{"POST", "/resume", "", http.StatusUnauthorized, true},
		{"POST", "/resume", "Bearer " + token, http.StatusOK, false},
		{"GET", "/status", "", http.StatusOK, false},
		{"GET", "/metrics", "", http.StatusOK, false},
		{"GET", "/", "", http.StatusOK, false},
	} {
		code, body := do(c.method, c.path, c.auth)
		if code != c.want {
			t.Errorf("%s %s with %q = %d %q, want %d", c.method, c.path, c.auth, code, body, c.want)
		}
		if strings.Contains(body, token) {
			t.Errorf("%s %s leaks the token: %q", c.method, c.path, body)
		}
		if paused := ch.Status().Paused; paused != c.paused {
			t.Errorf("after %s %s with %q: paused = %v, want %v", c.method, c.path, c.auth, paused, c.paused)
		}
	}
	if _, body := do("GET", "/", ""); !strings.Contains(body, `id="state"`) || !strings.Contains(body, "fetch(\"status\"") {
		t.Errorf("GET / is not the status page: %.200s", body)
	}
	if code, _ := do("GET", "/nope", ""); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", code)
	}
}
