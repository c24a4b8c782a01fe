package admin

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

var (
	chromiumOnce sync.Once
	chromiumPath string
	chromiumErr  string
)

// chromium returns Debian's Chromium, installing it with apt when the
// test runs as root and it is missing; the test is skipped, saying why,
// when it cannot be had.
func chromium(t *testing.T) string {
	t.Helper()
	chromiumOnce.Do(func() {
		for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
			if _, err := os.Stat(p); err == nil {
				chromiumPath = p
				return
			}
		}
		if os.Geteuid() != 0 {
			chromiumErr = "Debian chromium is not installed and the test is not root: apt-get install -y chromium"
			return
		}
		out, err := exec.Command("sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium").CombinedOutput()
		if err != nil {
			chromiumErr = "cannot install Debian chromium: " + err.Error() + ": " + lastLine(string(out))
			return
		}
		chromiumPath = "/usr/bin/chromium"
	})
	if chromiumPath == "" {
		t.Skip("status page browser test skipped: " + chromiumErr)
	}
	return chromiumPath
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// tickSource emits one row change, then a heartbeat Txn every 50ms, so the
// running channel has applied counts and a heartbeat lag to show.
type tickSource struct{ n int }

var pageTable = &event.Table{Schema: "app", Name: "t", Columns: []event.Column{{Name: "id"}}, PrimaryKey: []int{0}}

func (s *tickSource) Next(ctx context.Context) (*event.Txn, error) {
	s.n++
	pos := event.Position(strconv.Itoa(s.n))
	if s.n == 1 {
		return &event.Txn{Kind: event.KindDML, Pos: pos, CommitTime: time.Now(),
			Changes: []event.Change{{Op: event.OpInsert, Namespace: "app.t", Table: pageTable, After: []any{int64(1)}}}}, nil
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(50 * time.Millisecond):
	}
	now := time.Now()
	return &event.Txn{Kind: event.KindHeartbeat, Pos: pos, CommitTime: now, Heartbeat: now}, nil
}

func (s *tickSource) Close() error { return nil }

// pageSeed is a snapshot phase that reports a copy half done until
// released, then hands off.
type pageSeed struct {
	release chan struct{}
	mu      sync.Mutex
	done    bool
}

func (s *pageSeed) Seed(ctx context.Context, _ sink.Sink) (event.Position, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	return event.Position("0"), nil
}

func (s *pageSeed) Progress() *pipeline.SnapshotStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &pipeline.SnapshotStatus{State: "copying", Position: "gtid 0-1-7", TablesTotal: 2, TablesDone: 1,
		RowsCopied: 1500, RowsEstimated: 3000, RowsPerSecond: 250, ETASeconds: 6,
		Tables: []pipeline.SnapshotTable{{Table: "app.a", RowsCopied: 1000, RowsEstimated: 1000, Done: true}, {Table: "app.b", RowsCopied: 500, RowsEstimated: 2000}}}
	if s.done {
		st.State, st.TablesDone, st.RowsCopied, st.RowsEstimated, st.ETASeconds = "done", 2, 3000, 3000, 0
	}
	return st
}

type nopSink struct{}

func (nopSink) Apply(context.Context, []*event.Txn) error { return nil }
func (nopSink) Close() error                              { return nil }

// TestStatusPageInChromium loads the status page of a channel in headless
// Chromium: during its snapshot phase it shows the copy's progress (state,
// tables, rows, rate, ETA, the hand-off position, a row per table); once
// running, the state, the lag and the heartbeat lag; pause is refused
// without the admin token, and with it pause and resume change the
// channel's state.
func TestStatusPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped with -short")
	}
	browser := chromium(t)
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	seed := &pageSeed{release: make(chan struct{})}
	ch, err := pipeline.New(pipeline.Options{Name: "page", Store: store, Registerer: reg, Workers: 2, Seed: seed,
		OpenSource: func(context.Context, event.Position) (source.Source, error) { return &tickSource{}, nil },
		OpenSink:   func(context.Context) (sink.Sink, error) { return nopSink{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- ch.Run(runCtx) }()
	defer func() { stopRun(); <-runDone }()

	const token = "page-token-1"
	srv, err := Listen("127.0.0.1:0", NewHandler(ch, reg, Options{Token: token}), ServeOptions{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	// Each wait is bounded by Poll's own 30 s timeout; the browser lives as
	// long as ctx.

	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	waitText := func(id, want string) {
		t.Helper()
		poll("#"+id+" = "+want, `document.getElementById(`+strconv.Quote(id)+`).textContent === `+strconv.Quote(want))
	}
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("read #%s: %v", id, err)
		}
		return v
	}
	click := func(id string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID(id))); err != nil {
			t.Fatalf("click #%s: %v", id, err)
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+srv.Addr+"/")); err != nil {
		t.Fatalf("load the status page: %v", err)
	}
	waitText("state", "snapshot")
	waitText("snapshot-state", "copying")
	for id, want := range map[string]string{"snapshot-tables-done": "1/2", "snapshot-rows": "1500 of ~3000", "snapshot-rate": "250 rows/s",
		"snapshot-eta": "6.0 s", "snapshot-pos": "gtid 0-1-7", "snapshot-tables": "app.a1000 / ~1000doneapp.b500 / ~2000copying"} {
		if got := text(id); got != want {
			t.Errorf("#%s shows %q, want %q", id, got, want)
		}
	}
	close(seed.release)
	waitText("state", "running")
	waitText("snapshot-state", "done")
	// Polled twice: by then a heartbeat was applied.
	poll("two polls and a heartbeat lag", `Number(document.body.dataset.polled || 0) >= 2 && document.getElementById("hblag").textContent !== "–"`)
	if name, state := text("name"), text("state"); name != "page" || state != "running" {
		t.Errorf("page shows channel %q state %q, want page running", name, state)
	}
	lag := text("lag")
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("lag"), "data-seconds"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := strconv.ParseFloat(attr.Value, 64); !attr.Exists || err != nil || v < 0 || lag == "" || lag == "…" {
		t.Errorf("lag shown as %q (data-seconds %q)", lag, attr.Value)
	}
	if hbLag := text("hblag"); !strings.HasSuffix(hbLag, "ms") && !strings.HasSuffix(hbLag, " s") && !strings.HasSuffix(hbLag, "min") {
		t.Errorf("heartbeat lag shown as %q", hbLag)
	}
	if applied := text("applied"); !strings.HasPrefix(applied, "1 txns, 1 rows") {
		t.Errorf("applied shown as %q, want 1 txns, 1 rows", applied)
	}

	// Without the token, pause is refused and the channel keeps running.
	click("pause")
	poll("refusal message", `document.getElementById("msg").textContent.startsWith("refused")`)
	if ch.Status().Paused {
		t.Fatalf("channel paused without the token (page said %q)", text("msg"))
	}

	// With the token, pause and resume work.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), token)); err != nil {
		t.Fatal(err)
	}
	click("pause")
	waitText("state", "paused")
	if st := ch.Status(); !st.Paused || st.State != pipeline.StatePaused {
		t.Fatalf("after clicking pause the channel is %s (paused %v)", st.State, st.Paused)
	}
	click("resume")
	waitText("state", "running")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if st := ch.Status(); st.Paused || st.State != pipeline.StateRunning {
		t.Fatalf("after clicking resume the channel is %s (paused %v)", st.State, st.Paused)
	}
	if dir := os.Getenv("HAMAL_TEST_SCREENSHOT_DIR"); dir != "" {
		_ = os.WriteFile(dir+"/status-page.png", shot, 0o644)
	}
}
