package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
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
	srv, err := Listen("127.0.0.1:0", Handler(ch, reg), ServeOptions{})
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
	srv, err := Listen("127.0.0.1:0", NewHandler(ch, reg, Options{Token: token}), ServeOptions{Token: token})
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

// stuckChannel serves a fixed status.
type stuckChannel struct{ st pipeline.Status }

func (c *stuckChannel) Status() pipeline.Status { return c.st }
func (c *stuckChannel) Pause()                  {}
func (c *stuckChannel) Resume()                 {}

// TestLastErrorRedactedWithoutToken: /status and /readyz answer a request
// without the token with the row data of the last error redacted; with
// the token, in full.
func TestLastErrorRedactedWithoutToken(t *testing.T) {
	const token = "t0ken-for-redaction"
	ch := &stuckChannel{st: pipeline.Status{Name: "r", State: pipeline.StateError,
		LastError:         "sink: apply batch at 0-1-9: Error 1062: Duplicate entry 'secret-42' for key 'PRIMARY'",
		LastResolvedError: `sink: RENAME "user:77:email" "x": deadlock`}}
	for _, tc := range []struct {
		name, token, auth string
		full              bool
	}{
		{"no token configured", "", "", false},
		{"without the token", token, "", false},
		{"with another token", token, "Bearer nope", false},
		{"with the token", token, "Bearer " + token, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := Listen("127.0.0.1:0", NewHandler(ch, prometheus.NewRegistry(), Options{Token: tc.token}), ServeOptions{Token: tc.token})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			for _, path := range []string{"/status", "/readyz"} {
				req, _ := http.NewRequest("GET", "http://"+srv.Addr+path, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body := string(b)
				if got := strings.Contains(body, "secret-42"); got != tc.full {
					t.Errorf("%s shows the row data: %v, want %v: %s", path, got, tc.full, body)
				}
				if !tc.full && !strings.Contains(body, "Duplicate entry '…'") {
					t.Errorf("%s: the redacted error lost its shape: %s", path, body)
				}
				if path == "/status" && strings.Contains(body, "user:77") == !tc.full {
					t.Errorf("/status last_resolved_error: %s", body)
				}
			}
		})
	}
}

// TestListenRules: without a token only loopback may be bound; the server
// bounds its reads and writes; a cross-origin browser POST and, on
// loopback, a request naming another host are refused.
func TestListenRules(t *testing.T) {
	ch := &stuckChannel{st: pipeline.Status{Name: "l", State: pipeline.StateRunning}}
	h := NewHandler(ch, prometheus.NewRegistry(), Options{})
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0", "example.com:0"} {
		if srv, err := Listen(addr, h, ServeOptions{}); !errors.Is(err, ErrOpenListener) || !strings.Contains(err.Error(), "set admin.token_file") {
			if srv != nil {
				srv.Close()
			}
			t.Errorf("Listen(%s) without a token: %v, want ErrOpenListener naming admin.token_file", addr, err)
		}
	}
	open, err := Listen("0.0.0.0:0", NewHandler(ch, prometheus.NewRegistry(), Options{Token: "x"}), ServeOptions{Token: "x"})
	if err != nil {
		t.Fatalf("with a token, any address: %v", err)
	}
	if open.srv.ReadHeaderTimeout == 0 || open.srv.ReadTimeout == 0 || open.srv.WriteTimeout != DefaultWriteTimeout || open.srv.IdleTimeout == 0 {
		t.Errorf("timeouts: %+v", open.srv)
	}
	open.Close()

	srv, err := Listen("127.0.0.1:0", h, ServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Addr)
	for _, tc := range []struct {
		name, method, host string
		headers            map[string]string
		want               int
	}{
		{"same host", "POST", "127.0.0.1:" + port, nil, http.StatusOK},
		{"localhost", "GET", "localhost:" + port, nil, http.StatusOK},
		{"rebound name", "GET", "evil.example:" + port, nil, http.StatusMisdirectedRequest},
		{"cross-site POST", "POST", "127.0.0.1:" + port, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"cross-origin POST without fetch metadata", "POST", "127.0.0.1:" + port, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+srv.Addr+"/pause", nil)
			if tc.method == "GET" {
				req, _ = http.NewRequest("GET", "http://"+srv.Addr+"/status", nil)
			}
			req.Host = tc.host
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s Host %s = %d, want %d", tc.method, req.URL.Path, tc.host, resp.StatusCode, tc.want)
			}
		})
	}
}
