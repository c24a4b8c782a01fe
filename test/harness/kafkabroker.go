package harness

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// KafkaBrokerOptions configures StartKafkaBroker.
type KafkaBrokerOptions struct {
	TLS        *Certs   // take TLS only, with the server certificate
	Users      []string // SASL superusers as MECHANISM:USER:PASSWORD
	Topics     []string
	Partitions int
	AutoCreate bool
}

// StartKafkaBroker builds test/kafkabroker (kfake, a Kafka broker no
// package provides here) from the repository at repoRoot, runs it on a
// loopback port until the test ends, and returns its host:port.
func StartKafkaBroker(t testing.TB, repoRoot string, o KafkaBrokerOptions) string {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "kafkabroker")
	build := exec.Command("go", "build", "-o", bin, "./test/kafkabroker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build test/kafkabroker: %v\n%s", err, out)
	}
	args := []string{"-listen", "127.0.0.1:0"}
	if o.TLS != nil {
		args = append(args, "-tls-cert", o.TLS.Server, "-tls-key", o.TLS.ServerKey)
	}
	for _, u := range o.Users {
		args = append(args, "-user", u)
	}
	if len(o.Topics) > 0 {
		args = append(args, "-topics", strings.Join(o.Topics, ","))
	}
	if o.Partitions > 0 {
		args = append(args, "-partitions", strconv.Itoa(o.Partitions))
	}
	if o.AutoCreate {
		args = append(args, "-auto-create")
	}
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	exited, err := Spawn(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- addr
			}
		}
	}()
	select {
	case addr := <-ready:
		return addr
	case err := <-exited:
		t.Fatalf("kafkabroker exited at start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("kafkabroker did not listen within a minute")
	}
	return ""
}
