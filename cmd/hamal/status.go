package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/pipeline"
)

// listFlag is a repeatable flag; each value may also hold a comma list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// statusTarget is one admin API to ask, and where it came from.
type statusTarget struct {
	Addr   string `json:"addr"`
	Config string `json:"config,omitempty"`
	// token is the config's admin token: with it the API shows error
	// texts in full.
	token string
}

// channelStatus is one target's answer in `hamal status --json` over
// several channels.
type channelStatus struct {
	statusTarget
	Status *pipeline.Status `json:"status,omitempty"`
	Error  string           `json:"error,omitempty"`
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "status [--addr HOST:PORT]... [--config FILE]... [--dir DIR] [--json]", stdout, stderr)
	var addrs, configs listFlag
	fs.Var(&addrs, "addr", "admin address of a running channel; repeat or separate with commas for several (default: admin.listen of --config, else "+config.DefaultAdminListen+")")
	fs.Var(&configs, "config", "channel config file whose admin.listen is asked; repeatable")
	dir := fs.String("dir", "", "ask every channel configured in this directory (*.yaml, *.yml), e.g. /etc/hamal")
	asJSON := fs.Bool("json", false, "print JSON: the status object for one channel, an array of {addr, config, status, error} for several")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	var targets []statusTarget
	for _, a := range addrs {
		targets = append(targets, statusTarget{Addr: a})
	}
	paths := []string(configs)
	if *dir != "" {
		var found []string
		for _, pattern := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(*dir, pattern))
			found = append(found, m...)
		}
		if len(found) == 0 {
			fmt.Fprintf(stderr, "hamal status: no *.yaml or *.yml config in %s\n", *dir)
			return 2
		}
		sort.Strings(found)
		paths = append(paths, found...)
	}
	for _, p := range paths {
		listen, token, err := adminListenOf(p)
		if err != nil {
			fmt.Fprintf(stderr, "hamal status: %v\n", err)
			return 2
		}
		if listen == "off" {
			fmt.Fprintf(stderr, "hamal status: %s: admin.listen is off; skipped\n", p)
			continue
		}
		targets = append(targets, statusTarget{Addr: listen, Config: p, token: token})
	}
	if len(addrs) == 0 && len(paths) == 0 {
		targets = []statusTarget{{Addr: config.DefaultAdminListen}}
	}
	if len(targets) == 0 {
		fmt.Fprintln(stderr, "hamal status: no channel to ask")
		return 2
	}

	results := fetchAll(targets)
	// One channel: the detailed view, and the raw JSON object.
	if len(results) == 1 && (len(addrs)+len(paths) <= 1) {
		r := results[0]
		if r.Error != "" {
			fmt.Fprintf(stderr, "hamal status: %s\n", r.Error)
			return 1
		}
		if *asJSON {
			writeJSONTo(stdout, r.Status)
		} else {
			printStatus(stdout, *r.Status)
		}
		if r.Status.State == pipeline.StateError {
			return 1
		}
		return 0
	}
	if *asJSON {
		writeJSONTo(stdout, results)
	} else {
		printStatusTable(stdout, results)
	}
	for _, r := range results {
		if r.Error != "" || r.Status.State == pipeline.StateError {
			return 1
		}
	}
	return 0
}

// adminListenOf reads admin.listen and the admin token (admin.token, or
// admin.token_file when readable) from a config without validating the
// rest, so status works without the config's other secrets.
func adminListenOf(path string) (listen, token string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	var c struct {
		Admin struct {
			Listen    string `yaml:"listen"`
			Token     string `yaml:"token"`
			TokenFile string `yaml:"token_file"`
		} `yaml:"admin"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return "", "", fmt.Errorf("%s: %w", path, err)
	}
	listen = os.ExpandEnv(c.Admin.Listen)
	if listen == "" {
		listen = config.DefaultAdminListen
	}
	token = os.ExpandEnv(c.Admin.Token)
	if f := os.ExpandEnv(c.Admin.TokenFile); token == "" && f != "" {
		if b, err := os.ReadFile(f); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	return listen, token, nil
}

// fetchAll asks every target at once and returns the answers in order.
func fetchAll(targets []statusTarget) []channelStatus {
	client := &http.Client{Timeout: 5 * time.Second}
	out := make([]channelStatus, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = channelStatus{statusTarget: t}
			st, err := fetchStatus(client, connectAddr(t.Addr), t.token)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Status = &st
		}()
	}
	wg.Wait()
	return out
}

// connectAddr turns a listen address into one to connect to: a wildcard
// host (":9650", "0.0.0.0:9650") means this host.
func connectAddr(listen string) string {
	if strings.HasPrefix(listen, ":") {
		return "127.0.0.1" + listen
	}
	if rest, ok := strings.CutPrefix(listen, "0.0.0.0:"); ok {
		return "127.0.0.1:" + rest
	}
	if rest, ok := strings.CutPrefix(listen, "[::]:"); ok {
		return "[::1]:" + rest
	}
	return listen
}

func fetchStatus(client *http.Client, addr, token string) (pipeline.Status, error) {
	var st pipeline.Status
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return st, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return st, fmt.Errorf("cannot reach the admin API at %s: %v (is hamal running? is admin.listen right?)", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s answered %s: %s", addr, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("unexpected answer from %s: %v", addr, err)
	}
	return st, nil
}

func writeJSONTo(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// printStatusTable prints one line per channel.
func printStatusTable(w io.Writer, results []channelStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tADDR\tSTATE\tLAG\tHEARTBEAT LAG\tAPPLIED TXNS\tIN FLIGHT\tCHECKPOINT AGE\tERROR")
	for _, r := range results {
		if r.Error != "" {
			fmt.Fprintf(tw, "-\t%s\tunreachable\t-\t-\t-\t-\t-\t%s\n", r.Addr, oneLine(r.Error, 80))
			continue
		}
		st := r.Status
		hb := "-"
		if st.HeartbeatLagSeconds != nil {
			hb = fmt.Sprintf("%.3fs", *st.HeartbeatLagSeconds)
		}
		age := "-"
		if !st.CheckpointSavedAt.IsZero() {
			age = time.Since(st.CheckpointSavedAt).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3fs\t%s\t%d\t%d\t%s\t%s\n", st.Name, r.Addr, st.State, st.LagSeconds, hb,
			st.AppliedTxns, st.InFlight, age, orDash(oneLine(st.LastError, 80)))
	}
	tw.Flush()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-1] + "…"
	}
	return s
}

func printStatus(w io.Writer, st pipeline.Status) {
	row := func(k, v string) { fmt.Fprintf(w, "%-20s %s\n", k+":", v) }
	row("channel", st.Name)
	row("state", string(st.State))
	row("lag", fmt.Sprintf("%.3fs", st.LagSeconds))
	if st.HeartbeatLagSeconds != nil {
		row("heartbeat lag", fmt.Sprintf("%.3fs (heartbeat of %s)", *st.HeartbeatLagSeconds, st.HeartbeatAt.Format(time.RFC3339Nano)))
	}
	row("source position", orDash(st.SourcePosition))
	saved := ""
	if !st.CheckpointSavedAt.IsZero() {
		saved = fmt.Sprintf(" (saved %s ago)", time.Since(st.CheckpointSavedAt).Round(time.Millisecond))
	}
	row("checkpoint", orDash(st.CheckpointPosition)+saved)
	row("applied", fmt.Sprintf("%d txns, %d rows", st.AppliedTxns, st.AppliedRows))
	row("in flight", fmt.Sprintf("%d (%d ready, %d/%d workers busy)", st.InFlight, st.DAGReady, st.WorkersBusy, st.Workers))
	if s := st.Snapshot; s != nil {
		row("snapshot", snapshotLine(s))
		if s.Position != "" {
			row("snapshot position", s.Position+" (the stream starts here)")
		}
		for _, t := range s.Tables {
			state := "copying"
			if t.Done {
				state = "done"
			}
			row("  "+t.Table, fmt.Sprintf("%d of ~%d rows, %s", t.RowsCopied, t.RowsEstimated, state))
		}
	}
	if r := st.Relay; r != nil {
		state := r.State
		if r.Reason != "" && r.Reason != r.State {
			state += " (" + r.Reason + ")"
		}
		row("relay", state)
		row("relay read", fmt.Sprintf("seq %d at %s", r.ReadSeq, orDash(r.ReadPosition)))
		row("relay applied", fmt.Sprintf("seq %d at %s", r.AppliedSeq, orDash(r.AppliedPosition)))
		row("relay held", fmt.Sprintf("%d txns, %d of %d bytes in %d segments; read ahead %.3fs, oldest unapplied %.3fs",
			r.Txns, r.Bytes, r.MaxBytes, r.Segments, r.ReadAheadSeconds, r.OldestUnappliedSeconds))
	}
	if st.Paused {
		row("paused", "yes (POST /resume to continue)")
	}
	if st.LastError != "" {
		row("last error", st.LastError)
		row("last error at", st.LastErrorAt.Format(time.RFC3339))
	}
	if st.ResolvedErrors > 0 {
		row("resolved errors", fmt.Sprintf("%d, last at %s: %s", st.ResolvedErrors, st.LastResolvedErrorAt.Format(time.RFC3339), st.LastResolvedError))
	}
	if st.ErrorsRedacted {
		row("errors", "row data redacted (the admin API has a token this command was not given, or none: the log has the full text)")
	}
	row("up since", st.StartedAt.Format(time.RFC3339))
}

// snapshotLine sums a snapshot's progress in one line.
func snapshotLine(s *pipeline.SnapshotStatus) string {
	line := fmt.Sprintf("%s: %d/%d tables, %d of ~%d rows", s.State, s.TablesDone, s.TablesTotal, s.RowsCopied, s.RowsEstimated)
	if s.State == "copying" {
		line += fmt.Sprintf(", %.0f rows/s", s.RowsPerSecond)
		if s.ETASeconds > 0 {
			line += ", ETA " + (time.Duration(s.ETASeconds * float64(time.Second))).Round(time.Second).String()
		}
	}
	if !s.FinishedAt.IsZero() {
		line += fmt.Sprintf(", took %s", s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond))
	}
	return line
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
