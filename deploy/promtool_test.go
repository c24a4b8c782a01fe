package deploy

import (
	"os/exec"
	"testing"
)

// TestAlertRulesWithPromtool checks the rule file and runs its unit tests
// (prometheus/alerts_test.yaml: each alert fires on the series that should
// fire it, and not before) with Prometheus's own promtool.
func TestAlertRulesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus); the alert unit tests need it")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
