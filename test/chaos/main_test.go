package chaos

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/hamal-replication/hamal/test/harness"
)

var hamalBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every scenario skips: no need to build hamal
	}
	dir, err := os.MkdirTemp("", "hamal-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hamalBin, err = harness.HamalBinary("../..", dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
