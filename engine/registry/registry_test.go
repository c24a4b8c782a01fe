package registry

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigsDirectoryParses loads every example channel config.
func TestConfigsDirectoryParses(t *testing.T) {
	t.Setenv("SRC_PASSWORD", "x")
	files, _ := filepath.Glob("../../configs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configs in configs/")
	}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "migrate-") {
			continue // a migration plan, not a channel config: reshard's tests load it
		}
		if _, err := New().Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestReferenceConfig parses configs/reference.yaml, which lists every key.
func TestReferenceConfig(t *testing.T) {
	t.Setenv("SRC_PASSWORD", "x")
	if _, err := New().Load("../../configs/reference.yaml"); err != nil {
		t.Fatal(err)
	}
}

// TestKinds: every engine is reachable by its kind on each side it plays,
// and a wrong kind names the kinds there are.
func TestKinds(t *testing.T) {
	r := New()
	sources, sinks := r.Names()
	if got := strings.Join(sources, ","); got != "kafka,mongo,mysql,redis" {
		t.Errorf("source kinds %s", got)
	}
	if got := strings.Join(sinks, ","); got != "kafka,mongo,mysql,redis" {
		t.Errorf("sink kinds %s", got)
	}
	for _, kind := range sources {
		if b, err := r.SourceBlock(kind); err != nil || b == nil {
			t.Errorf("source %s: %v", kind, err)
		}
	}
	for _, kind := range sinks {
		if b, err := r.SinkBlock(kind); err != nil || b == nil {
			t.Errorf("sink %s: %v", kind, err)
		}
	}
	for kind, want := range map[string]string{
		"":         "required; supported: kafka, mongo, mysql, redis",
		"mongodb":  `unknown kind "mongodb"; did you mean "mongo"? supported: kafka, mongo, mysql, redis`,
		"postgres": `unknown kind "postgres"; supported: kafka, mongo, mysql, redis`,
	} {
		if _, err := r.SinkBlock(kind); err == nil || err.Error() != want {
			t.Errorf("sink kind %q: %v, want %q", kind, err, want)
		}
	}
}
