package harness

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// FerretDBOptions configures StartFerretDB.
type FerretDBOptions struct {
	// TLS makes it take TLS only, with the server certificate.
	TLS *Certs
}

// StartFerretDB builds and starts the embedded FerretDB of test/ferretdb
// (a MongoDB-wire server on SQLite: no mongod can be installed here),
// repoRoot being the repository's root, and returns its host:port. It
// skips the test, saying why, unless HAMAL_TEST_FERRETDB is set (a cold
// build takes 10-45 minutes on two cores) and when FerretDB cannot be
// built or started.
func StartFerretDB(t testing.TB, repoRoot string, o FerretDBOptions) string {
	t.Helper()
	if testing.Short() {
		t.Skip("FerretDB tests: skipped with -short (building FerretDB takes minutes on a cold cache)")
	}
	if os.Getenv("HAMAL_TEST_FERRETDB") == "" {
		t.Skip("FerretDB tests run with `make test-mongo` (HAMAL_TEST_FERRETDB=1): a cold build of FerretDB takes 10-45 minutes on a 2-core machine, too long for `make test`")
	}
	src, err := filepath.Abs(filepath.Join(repoRoot, "test", "ferretdb"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ferretdb")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("FerretDB (test/ferretdb) does not build here: %v\n%s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"-dir", t.TempDir(), "-listen", addr}
	if o.TLS != nil {
		args = append(args, "-tls-cert", o.TLS.Server, "-tls-key", o.TLS.ServerKey)
	}
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder // FerretDB logs at debug level; shown only on failure
	var logsMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { logsMu.Lock(); defer logsMu.Unlock(); return logs.Write(p) })
	t.Cleanup(func() {
		if t.Failed() {
			logsMu.Lock()
			defer logsMu.Unlock()
			s := logs.String()
			t.Logf("FerretDB log (last 4000 bytes):\n%s", s[max(0, len(s)-4000):])
		}
	})
	exited, err := Spawn(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	ready := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready ") {
				ready <- struct{}{}
			}
		}
	}()
	select {
	case <-ready:
		return addr
	case err := <-exited:
		t.Skipf("FerretDB exited at start (%v)", err)
	case <-time.After(30 * time.Second):
		t.Skip("FerretDB did not listen within 30s")
	}
	return ""
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
