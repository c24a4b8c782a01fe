package admin

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPprof: /debug/pprof is absent unless Options.Pprof is set; on a
// loopback listener without a token it serves the goroutine dump and a
// CPU profile (gzipped protobuf); with a token it refuses requests without
// it.
func TestPprof(t *testing.T) {
	ch := &stuckChannel{}
	reg := prometheus.NewRegistry()
	get := func(addr, path, auth string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	serve := func(opts Options) string {
		t.Helper()
		srv, err := Listen("127.0.0.1:0", NewHandler(ch, reg, opts), ServeOptions{Token: opts.Token})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv.Addr
	}

	t.Run("off by default", func(t *testing.T) {
		addr := serve(Options{})
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine", "/debug/pprof/profile?seconds=1"} {
			if code, _ := get(addr, p, ""); code != http.StatusNotFound {
				t.Errorf("GET %s = %d without admin.pprof, want 404", p, code)
			}
		}
	})
	t.Run("loopback", func(t *testing.T) {
		addr := serve(Options{Pprof: true})
		code, body := get(addr, "/debug/pprof/goroutine?debug=1", "")
		if code != http.StatusOK || !bytes.Contains(body, []byte("goroutine profile:")) {
			t.Fatalf("goroutine dump: %d %.200s", code, body)
		}
		code, body = get(addr, "/debug/pprof/profile?seconds=1", "")
		if code != http.StatusOK {
			t.Fatalf("CPU profile: %d %.200s", code, body)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("CPU profile is not gzipped: %v", err)
		}
		if raw, err := io.ReadAll(zr); err != nil || len(raw) == 0 {
			t.Fatalf("CPU profile: %d bytes, %v", len(raw), err)
		}
		if code, body := get(addr, "/debug/pprof/", ""); code != http.StatusOK || !strings.Contains(string(body), "heap") {
			t.Errorf("index: %d %.200s", code, body)
		}
	})
	t.Run("token", func(t *testing.T) {
		const token = "pprof-t0ken"
		addr := serve(Options{Pprof: true, Token: token})
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"} {
			if code, _ := get(addr, p, ""); code != http.StatusUnauthorized {
				t.Errorf("GET %s without the token = %d, want 401", p, code)
			}
		}
		if code, body := get(addr, "/debug/pprof/goroutine?debug=1", "Bearer "+token); code != http.StatusOK || !bytes.Contains(body, []byte("goroutine profile:")) {
			t.Errorf("goroutine dump with the token: %d %.200s", code, body)
		}
	})
}
