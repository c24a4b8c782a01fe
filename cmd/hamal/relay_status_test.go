package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/relay"
)

// TestStatusShowsRelayPositions: `hamal status` prints both relay
// positions and why the reader waits.
func TestStatusShowsRelayPositions(t *testing.T) {
	var out bytes.Buffer
	printStatus(&out, pipeline.Status{Name: "c", State: pipeline.StateRetrying, Relay: &relay.Status{
		State: "relay full", Reason: "relay full: 1048576 of max_bytes 1048576 bytes hold transactions the applier has not applied; the source waits",
		ReadSeq: 3208, ReadPosition: "1-1-3212", AppliedSeq: 288, AppliedPosition: "1-1-292",
		Txns: 2920, Bytes: 1048576, MaxBytes: 1048576, Segments: 3, Full: true}})
	for _, want := range []string{"relay full", "relay read:          seq 3208 at 1-1-3212", "relay applied:       seq 288 at 1-1-292", "2920 txns, 1048576 of 1048576 bytes in 3 segments"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	printStatus(&out, pipeline.Status{Name: "c", State: pipeline.StateRunning})
	if strings.Contains(out.String(), "relay") {
		t.Errorf("a channel without relay shows relay rows:\n%s", out.String())
	}
}
