package reshard

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestMigratePageInChromium loads the migration's status page (GET /) in
// headless Chromium: with a reverse channel that cannot apply it shows
// reverse replication ERROR, rollback ready "no" and the channel's error;
// once the channel is resumed and applies, "running" and "yes".
func TestMigratePageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped with -short")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("status page browser test skipped: Debian chromium is not installed (apt-get install -y chromium)")
	}
	m, reg, _, broken := reverseMigration(t)
	srv := httptest.NewServer(m.Handler(reg))
	defer srv.Close()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser), chromedp.UserDataDir(t.TempDir()), chromedp.Flag("headless", true),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitText := func(id, want string) {
		t.Helper()
		expr := `document.getElementById(` + strconv.Quote(id) + `).textContent.includes(` + strconv.Quote(want) + `)`
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("waiting for #%s to show %q: %v", id, want, err)
		}
	}
	waitText("name", "rb")
	waitText("phase", "cutover (switched)")
	waitText("reverse", "ERROR")
	waitText("rollback", "no")
	waitText("problems", "migrate-rb-rev1 (targets[1] test → sources) is in state error")
	waitText("channels", "migrate-rb-rev0")

	broken.ok.Store(1 << 40)
	m.ResumeChannels()
	waitText("reverse", "running")
	waitText("rollback", "yes")
}
