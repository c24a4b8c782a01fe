package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/pipeline"
)

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "status [--addr HOST:PORT | --config FILE] [--json]", stdout, stderr)
	addr := fs.String("addr", "", "admin address of the running channel (default: admin.listen of --config, else "+config.DefaultAdminListen+")")
	path := fs.String("config", "", "channel config file; its admin.listen is used")
	asJSON := fs.Bool("json", false, "print the raw JSON status")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	target := *addr
	if target == "" && *path != "" {
		cfg, ok := loadConfig(*path, stderr)
		if !ok {
			return 2
		}
		target = cfg.Admin.Listen
	}
	if target == "" {
		target = config.DefaultAdminListen
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + target + "/status")
	if err != nil {
		fmt.Fprintf(stderr, "hamal status: cannot reach the admin API at %s: %v (is hamal running? is admin.listen right?)\n", target, err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "hamal status: %s answered %s: %s\n", target, resp.Status, body)
		return 1
	}
	if *asJSON {
		stdout.Write(body)
		return 0
	}
	var st pipeline.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "hamal status: unexpected answer from %s: %v\n", target, err)
		return 1
	}
	printStatus(stdout, st)
	if st.State == pipeline.StateError {
		return 1
	}
	return 0
}

func printStatus(w io.Writer, st pipeline.Status) {
	row := func(k, v string) { fmt.Fprintf(w, "%-20s %s\n", k+":", v) }
	row("channel", st.Name)
	row("state", string(st.State))
	row("lag", fmt.Sprintf("%.3fs", st.LagSeconds))
	row("source position", orDash(st.SourcePosition))
	saved := ""
	if !st.CheckpointSavedAt.IsZero() {
		saved = fmt.Sprintf(" (saved %s ago)", time.Since(st.CheckpointSavedAt).Round(time.Millisecond))
	}
	row("checkpoint", orDash(st.CheckpointPosition)+saved)
	row("applied", fmt.Sprintf("%d txns, %d rows", st.AppliedTxns, st.AppliedRows))
	row("in flight", fmt.Sprint(st.InFlight))
	if st.LastError != "" {
		row("last error", st.LastError)
		row("last error at", st.LastErrorAt.Format(time.RFC3339))
	}
	row("up since", st.StartedAt.Format(time.RFC3339))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
