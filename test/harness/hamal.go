package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BinEnv names a hamal binary that end-to-end suites use instead of
// building their own: make test builds bin/hamal once and passes it to
// every package that runs the real binary. Linking hamal took minutes of
// CPU on a loaded two-vCPU machine, once per package without it.
const BinEnv = "HAMAL_TEST_BIN"

// HamalBinary returns the hamal binary an end-to-end suite runs: the file
// $HAMAL_TEST_BIN names, or else cmd/hamal built into dir. moduleDir is
// the repository root.
func HamalBinary(moduleDir, dir string) (string, error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s=%s: %w; unset it to build hamal, or run make build", BinEnv, bin, err)
		}
		return filepath.Abs(bin)
	}
	bin := filepath.Join(dir, "hamal")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/hamal")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build hamal: %w\n%s", err, out)
	}
	return bin, nil
}
