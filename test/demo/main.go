// Command demo is `make demo`: on a fresh machine it starts two local
// MariaDB servers (127.0.0.1:23306 → 127.0.0.1:23307), builds hamal, runs
// it with configs/demo.yaml, drives a workload, shows status and lag while
// it replicates, checks that every table on the target equals the source,
// and cleans everything up.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

const (
	sourcePort  = 23306
	targetPort  = 23307
	adminAddr   = "127.0.0.1:9650"
	replPass    = "demo-repl-pw"
	writers     = 4
	txnsPerConn = 2500
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "demo failed: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, a ...any) { fmt.Printf("\n==> "+format+"\n", a...) }

func run() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	step("starting two MariaDB servers (source :%d, target :%d)", sourcePort, targetPort)
	var src, dst *harness.Server
	var srcErr, dstErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		src, srcErr = harness.StartMariaDB(harness.Options{ServerID: 1, Port: sourcePort})
	}()
	go func() {
		defer wg.Done()
		dst, dstErr = harness.StartMariaDB(harness.Options{ServerID: 2, Port: targetPort})
	}()
	wg.Wait()
	defer func() {
		step("cleaning up: stopping servers, removing data and ./var/demo")
		for _, s := range []*harness.Server{src, dst} {
			if s != nil {
				_ = s.Remove()
			}
		}
		_ = os.RemoveAll("var/demo")
	}()
	if srcErr != nil {
		return fmt.Errorf("source: %w (is port %d free?)", srcErr, sourcePort)
	}
	if dstErr != nil {
		return fmt.Errorf("target: %w (is port %d free?)", dstErr, targetPort)
	}
	if err := src.Exec(
		"CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '"+replPass+"'",
		"GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, SELECT ON *.* TO 'repl'@'127.0.0.1'",
	); err != nil {
		return err
	}
	if err := src.Exec(workload.Schema...); err != nil {
		return err
	}
	if err := dst.Exec(workload.Schema...); err != nil {
		return err
	}
	_ = os.RemoveAll("var/demo")

	step("building bin/hamal")
	if err := runCmd("go", "build", "-o", "bin/hamal", "./cmd/hamal"); err != nil {
		return err
	}
	os.Setenv("SRC_PASSWORD", replPass)

	step("bin/hamal check --config configs/demo.yaml")
	if err := runCmd("bin/hamal", "check", "--config", "configs/demo.yaml"); err != nil {
		return err
	}

	step("bin/hamal run --config configs/demo.yaml (log in var/demo.log)")
	if err := os.MkdirAll("var", 0o755); err != nil {
		return err
	}
	logf, err := os.Create("var/demo.log")
	if err != nil {
		return err
	}
	defer logf.Close()
	hamal := exec.Command("bin/hamal", "run", "--config", "configs/demo.yaml")
	hamal.Stdout, hamal.Stderr = logf, logf
	exited, err := harness.Spawn(hamal)
	if err != nil {
		return err
	}
	defer func() {
		_ = hamal.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = hamal.Process.Kill()
		}
	}()
	if err := waitReady(exited); err != nil {
		return err
	}

	step("writing %d transactions from %d connections to the source", writers*txnsPerConn, writers)
	var done atomic.Int64
	ctx := context.Background()
	errc := make(chan error, writers)
	for w := 1; w <= writers; w++ {
		go func() { errc <- workload.Write(ctx, src.Addr, w, txnsPerConn, uint64(time.Now().UnixNano()), &done) }()
	}
	ticker := time.NewTicker(time.Second)
	finished := 0
	for finished < writers {
		select {
		case err := <-errc:
			if err != nil {
				return fmt.Errorf("workload: %w", err)
			}
			finished++
		case <-ticker.C:
			fmt.Printf("    written %5d txns | %s\n", done.Load(), statusLine())
		}
	}
	ticker.Stop()

	step("waiting for the target to catch up")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		equal, report, err := compare(src, dst)
		if err != nil {
			return err
		}
		if equal {
			fmt.Print(report)
			break
		}
		if time.Now().After(deadline) {
			fmt.Print(report)
			return fmt.Errorf("target did not converge within 3 minutes; see var/demo.log")
		}
		fmt.Printf("    %s\n", statusLine())
		time.Sleep(time.Second)
	}

	step("bin/hamal status")
	if err := runCmd("bin/hamal", "status", "--config", "configs/demo.yaml"); err != nil {
		return err
	}
	step("demo passed: every table on the target equals the source")
	return nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("run the demo from inside the hamal repository")
		}
	}
}

func runCmd(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

func waitReady(exited <-chan error) error {
	for i := 0; i < 300; i++ {
		select {
		case err := <-exited:
			return fmt.Errorf("hamal exited: %v; see var/demo.log", err)
		default:
		}
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("hamal not ready after 30s; see var/demo.log")
}

func statusLine() string {
	resp, err := http.Get("http://" + adminAddr + "/status")
	if err != nil {
		return "status: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st struct {
		State       string  `json:"state"`
		LagSeconds  float64 `json:"lag_seconds"`
		AppliedTxns uint64  `json:"applied_txns"`
		InFlight    int     `json:"in_flight"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "status: " + err.Error()
	}
	return fmt.Sprintf("hamal: state=%s applied=%d in_flight=%d lag=%.2fs", st.State, st.AppliedTxns, st.InFlight, st.LagSeconds)
}

func compare(src, dst *harness.Server) (bool, string, error) {
	var b strings.Builder
	equal := true
	for table, order := range workload.Tables {
		a, an, err := src.TableChecksum(table, order)
		if err != nil {
			return false, "", err
		}
		c, cn, err := dst.TableChecksum(table, order)
		if err != nil {
			return false, "", err
		}
		mark := "equal"
		if a != c || an != cn {
			mark, equal = "DIFFERENT", false
		}
		fmt.Fprintf(&b, "    %-12s source %6d rows %s | target %6d rows %s | %s\n", table, an, a, cn, c, mark)
	}
	return equal, b.String(), nil
}
