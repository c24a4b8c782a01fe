package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/reshard"
)

// TestMigrateStatusShowsReverseError: a reverse channel in state error is
// an ERROR line naming the old shard as a source, with "rollback ready:
// no", never a lag of 0.0s.
func TestMigrateStatusShowsReverseError(t *testing.T) {
	st := &reshard.Status{Name: "split", Phase: reshard.PhaseCutover, CutoverStep: reshard.StepSwitched,
		Channels: []reshard.ChannelStatus{
			{Status: pipeline.Status{Name: "migrate-split-rev0", State: pipeline.StateRunning, LagSeconds: 0.4}, Direction: reshard.DirectionReverse, From: "targets[0] a:1", To: "sources"},
			{Status: pipeline.Status{Name: "migrate-split-rev1", State: pipeline.StateError, LastError: "sources[0] a:3: Error 1366"}, Direction: reshard.DirectionReverse, From: "targets[1] a:2", To: "sources"},
		},
		Reverse:  reshard.ReverseStatus{State: reshard.ReverseFailing, Channels: 2, LagSeconds: 0.4, Problems: []string{"migrate-split-rev1 (targets[1] a:2 → sources) is in state error: sources[0] a:3: Error 1366"}},
		Rollback: reshard.Rollback{Why: "reverse replication is not applying"},
	}
	var b bytes.Buffer
	printMigrationStatus(&b, st, false)
	out := b.String()
	for _, want := range []string{
		"reverse replication: ERROR",
		"ERROR migrate-split-rev1 (targets[1] a:2 → sources) is in state error: sources[0] a:3: Error 1366",
		"rollback ready: no (reverse replication is not applying)",
		"migrate-split-rev0           reverse running   lag 0.4s",
		"migrate-split-rev1           reverse error     lag -",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "target 0") || strings.Contains(out, "lag 0.0s") {
		t.Errorf("status hides the error behind a lag or a target number:\n%s", out)
	}
}

// TestMigrateHelpListsFlags: the flags the docs use are in --help.
func TestMigrateHelpListsFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"migrate", "--help"}, []string{"--json", "--addr", "--no-wait", "resume", "waits for\n            the report"}},
		{[]string{"migrate", "status", "--help"}, []string{"-json", "-addr", "-plan"}},
		{[]string{"migrate", "verify", "--help"}, []string{"-no-wait", "-addr"}},
		{[]string{"migrate", "cutover", "--help"}, []string{"-no-wait", "-addr"}},
		{[]string{"migrate", "resume", "--help"}, []string{"-addr"}},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != 0 {
			t.Errorf("%v: exit %d: %s", tc.args, code, errOut.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}
