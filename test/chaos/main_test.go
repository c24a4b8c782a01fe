package chaos

import (
	"fmt"
	"os"
	"testing"
)

var hamalBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hamal-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hamalBin, err = BuildHamal("../..", dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
