package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/reshard"
	"github.com/hamal-replication/hamal/sink"
	"github.com/hamal-replication/hamal/source"
)

// recordingRegisterer registers into a real registry and keeps the
// descriptions, so series that exist only after their first observation
// (rows by table, heartbeat lag) are known too.
type recordingRegisterer struct {
	*prometheus.Registry
	descs []*prometheus.Desc
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return r.Registry.Register(c)
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// exportedNames builds a channel the way `hamal run` does and returns every
// series name it can export, with the _bucket/_sum/_count of histograms.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	store, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := &recordingRegisterer{Registry: prometheus.NewRegistry()}
	never := errors.New("not started")
	if _, err := pipeline.New(pipeline.Options{Name: "c", Store: store, Registerer: reg,
		OpenSource: func(context.Context, event.Position) (source.Source, error) { return nil, never },
		OpenSink:   func(context.Context) (sink.Sink, error) { return nil, never }}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(reshard.MetricsForDocs()); err != nil { // hamal migrate
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, d := range reg.descs {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		names[m[1]] = true
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+suffix] = true
			}
		}
	}
	if len(names) < 20 {
		t.Fatalf("only %d metric names registered: %v", len(names), names)
	}
	return names
}

var hamalMetric = regexp.MustCompile(`\bhamal_[a-z0-9_]+`)

// checkExprs fails for every hamal_ name in exprs that is not exported,
// and for an expression that names no Hamal metric at all (unless allowed).
func checkExprs(t *testing.T, where string, exprs map[string]string, exported map[string]bool, allowNone map[string]bool) {
	t.Helper()
	if len(exprs) == 0 {
		t.Fatalf("%s: no expressions found", where)
	}
	for name, expr := range exprs {
		found := hamalMetric.FindAllString(expr, -1)
		if len(found) == 0 && !allowNone[name] {
			t.Errorf("%s %q names no Hamal metric: %s", where, name, expr)
		}
		for _, m := range found {
			if !exported[m] {
				t.Errorf("%s %q uses %s, which Hamal does not export", where, name, m)
			}
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertsUseExportedMetrics(t *testing.T) {
	exported := exportedNames(t)
	data, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var rf ruleFile
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	exprs := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v lacks alert, expr, severity or summary", r)
			}
			exprs[r.Alert] = r.Expr
		}
	}
	checkExprs(t, "alert", exprs, exported, map[string]bool{"HamalDown": true})
	// The alerts the operations issue asks for.
	for _, want := range []string{"HamalReplicationLagHigh", "HamalChannelError", "HamalCheckpointNotAdvancing", "HamalSourceDisconnected"} {
		if exprs[want] == "" {
			t.Errorf("alerts.yaml lacks %s", want)
		}
	}
}

func TestDashboardUsesExportedMetrics(t *testing.T) {
	exported := exportedNames(t)
	data, err := os.ReadFile("grafana/hamal.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("hamal.json: %v", err)
	}
	exprs := map[string]string{}
	var titles []string
	for _, p := range dash.Panels {
		titles = append(titles, p.Title)
		for i, tg := range p.Targets {
			exprs[p.Title+"#"+string(rune('A'+i))] = tg.Expr
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs["variable "+v.Name] = v.Definition
		}
	}
	checkExprs(t, "panel", exprs, exported, nil)
	sort.Strings(titles)
	all := strings.ToLower(strings.Join(titles, "|"))
	for _, want := range []string{"lag", "throughput", "error", "dag", "checkpoint age"} {
		if !strings.Contains(all, want) {
			t.Errorf("dashboard has no panel about %q; panels: %v", want, titles)
		}
	}
}

// TestDocumentedMetrics requires docs/metrics.md to describe every metric
// Hamal registers, and to describe none that it does not.
func TestDocumentedMetrics(t *testing.T) {
	exported := exportedNames(t)
	data, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(hamal_[a-z0-9_]+)").FindAllStringSubmatch(string(data), -1) {
		documented[m[1]] = true
	}
	for name := range exported {
		if strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count") {
			continue
		}
		if !documented[name] {
			t.Errorf("docs/metrics.md does not document %s", name)
		}
	}
	for name := range documented {
		if !exported[name] {
			t.Errorf("docs/metrics.md documents %s, which Hamal does not export", name)
		}
	}
}
