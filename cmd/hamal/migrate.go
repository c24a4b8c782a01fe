package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hamal-replication/hamal/admin"
	"github.com/hamal-replication/hamal/config"
	"github.com/hamal-replication/hamal/engine"
	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/reshard"
)

const migrateUsage = `Usage: hamal migrate SUBCOMMAND --plan FILE [flags]

Online resharding (docs/migrate.md). "start" is the long-running process;
the other subcommands talk to it over its admin API (admin.listen of the plan).

  start     run the migration: snapshot, copy, catch-up, verify; then wait for
            cutover/cancel/complete. Restart with the same plan to resume.
  check     preflight only, moves no data: reachability, binlog settings, the
            grants every channel of every phase needs (each missing one named
            with the GRANT that fixes it), users that can write through
            read_only, AUTO_INCREMENT collisions across shards, tables, shard
            keys, rule coverage
  status    phase, rows copied/estimated, rate, ETA, lag, reverse replication,
            "rollback ready", verify results (a progress bar on a terminal).
            Reads the state dir without locking it when no process answers.
  verify    compare sources and targets again (chunked checksums); waits for
            the report
  cutover   fence the sources, wait for the targets, start reverse replication
  cancel    end the migration with the sources as primary; after a cut-over,
            roll back through reverse replication
  complete  end a cut-over migration with the targets as primary
  resume    restart the migration's channels that stopped in state error

Flags of every subcommand but start and check:
  --addr HOST:PORT  admin address of the running migration (default: the
                    plan's admin.listen)
  --json            status: print the status as JSON
  --no-wait         verify, cutover: return once the request is accepted

Run "hamal migrate SUBCOMMAND --help" for a subcommand's flags.
`

func cmdMigrate(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		out := stdout
		if len(args) == 0 {
			out = stderr
		}
		fmt.Fprint(out, migrateUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	switch sub {
	case "start":
		return migrateStart(args[1:], stdout, stderr)
	case "check":
		return migrateCheck(args[1:], stdout, stderr)
	case "status":
		return migrateStatus(args[1:], stdout, stderr)
	case "verify", "cutover", "cancel", "complete", "resume":
		return migrateRequest(sub, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "hamal migrate: unknown subcommand %q\n\n%s", sub, migrateUsage)
	return 2
}

func loadPlan(path string, stderr io.Writer) (*reshard.Plan, bool) {
	if path == "" {
		fmt.Fprintln(stderr, "hamal migrate: --plan FILE is required (see configs/migrate-example.yaml)")
		return nil, false
	}
	p, err := reshard.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "hamal migrate: %v\n", err)
		return nil, false
	}
	return p, true
}

func migrateStart(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("migrate start", "migrate start --plan FILE", stdout, stderr)
	path := fs.String("plan", "", "migration plan file (YAML)")
	jsonLog := fs.Bool("log-json", false, "log JSON lines instead of text")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	plan, ok := loadPlan(*path, stderr)
	if !ok {
		return 2
	}
	var log *slog.Logger
	if *jsonLog {
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	} else {
		log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	warnTLS(log, planTLS(plan))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := reshard.Open(plan, log, reg)
	if err != nil {
		fmt.Fprintf(stderr, "hamal migrate: %v\n", err)
		return 1
	}
	defer m.Close()
	// A cut-over request is answered once the sources are fenced.
	srv, err := admin.Listen(plan.Admin.Listen, m.Handler(reg),
		admin.ServeOptions{Token: plan.Admin.Token, WriteTimeout: plan.Cutover.Timeout + 2*time.Minute})
	if err != nil {
		fmt.Fprintf(stderr, "hamal migrate: admin.listen: %v\n", err)
		return 1
	}
	defer srv.Close()
	log.Info("migration admin API listening", "addr", srv.Addr, "migration", plan.Name)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "hamal migrate: %v\n", err)
		return 1
	}
	return 0
}

func migrateCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("migrate check", "migrate check --plan FILE [--timeout D]", stdout, stderr)
	path := fs.String("plan", "", "migration plan file (YAML)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	plan, ok := loadPlan(*path, stderr)
	if !ok {
		return 2
	}
	r := engine.NewReport(stdout)
	fmt.Fprintf(stdout, "plan %s: %d source(s), %d target(s), %d table(s)\n", plan.Name, len(plan.Sources), len(plan.Targets), len(plan.Tables))
	reportTLS(r, planTLS(plan))
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	reshard.Check(ctx, plan, r, func(format string, args ...any) { fmt.Fprintf(stdout, "== "+format+"\n", args...) })
	if n := r.Problems(); n > 0 {
		fmt.Fprintf(stdout, "%d problem(s) found\n", n)
		return 1
	}
	fmt.Fprintf(stdout, "plan %s: OK\n", plan.Name)
	return 0
}

// planTLS lists the tls blocks of a plan's servers.
func planTLS(plan *reshard.Plan) []config.TLSAt {
	return append(config.TLSBlocks("sources", plan.Sources), config.TLSBlocks("targets", plan.Targets)...)
}

func adminURL(plan *reshard.Plan, addr, path string) string {
	if addr == "" {
		addr = plan.Admin.Listen
	}
	return "http://" + addr + path
}

func migrateStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("migrate status", "migrate status --plan FILE [--addr HOST:PORT] [--json]", stdout, stderr)
	path := fs.String("plan", "", "migration plan file (YAML)")
	addr := fs.String("addr", "", "admin address of the running migration (default: the plan's admin.listen)")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	plan, ok := loadPlan(*path, stderr)
	if !ok {
		return 2
	}
	st, err := fetchMigrationStatus(adminURL(plan, *addr, "/status"), plan.Admin.Token)
	if err != nil {
		// No process answers: read the state dir's status file, which
		// takes no lock (a status in a watch loop never stops a start).
		state, serr := reshard.LoadState(plan.StateDir, plan.Name)
		if serr != nil {
			fmt.Fprintf(stderr, "hamal migrate: cannot reach the migration at %s (%v), and its state dir: %v\n", adminURL(plan, *addr, ""), err, serr)
			return 1
		}
		s := reshard.StatusFromState(plan, state)
		st = &s
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return 0
	}
	printMigrationStatus(stdout, st, isTerminal(stdout))
	return 0
}

// fetchMigrationStatus reads /status, with the plan's token (error texts
// in full) when it has one.
func fetchMigrationStatus(url, token string) (*reshard.Status, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st reshard.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("decode %s: %w", url, err)
	}
	return &st, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws [#####.....] 42%.
func progressBar(done, total int64, width int) string {
	if total <= 0 {
		total = 1
	}
	frac := min(float64(done)/float64(total), 1)
	n := int(frac * float64(width))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + fmt.Sprintf("] %3.0f%%", frac*100)
}

func printMigrationStatus(w io.Writer, st *reshard.Status, tty bool) {
	phase := string(st.Phase)
	if st.CutoverStep != "" {
		phase += " (" + st.CutoverStep + ")"
	}
	fmt.Fprintf(w, "migration %s: phase %s\n", st.Name, phase)
	fmt.Fprintf(w, "copy: %d / ~%d rows", st.RowsCopied, st.RowsEstimated)
	if st.RowsPerSecond > 0 {
		fmt.Fprintf(w, ", %.0f rows/s", st.RowsPerSecond)
	}
	if st.ETASeconds > 0 {
		fmt.Fprintf(w, ", ETA %s", (time.Duration(st.ETASeconds) * time.Second).String())
	}
	if st.Throttled {
		fmt.Fprint(w, " (throttled by source load)")
	}
	fmt.Fprintln(w)
	if tty {
		fmt.Fprintf(w, "  %s\n", progressBar(st.RowsCopied, st.RowsEstimated, 40))
	}
	for _, t := range st.Tables {
		line := fmt.Sprintf("  %-30s %10d / ~%d", t.Table, t.RowsCopied, t.RowsEstimated)
		if t.Done {
			line += " done"
		}
		fmt.Fprintln(w, line)
	}
	var fwdLag float64
	var broken []string
	for _, c := range st.Channels {
		if c.Direction == reshard.DirectionForward {
			if c.State != pipeline.StateRunning && c.State != pipeline.StatePaused {
				msg := fmt.Sprintf("%s (%s → %s) is in state %s", c.Name, c.From, c.To, c.State)
				if c.LastError != "" {
					msg += ": " + c.LastError
				}
				broken = append(broken, msg)
			} else {
				fwdLag = max(fwdLag, c.LagSeconds)
			}
		}
	}
	if n := countDirection(st.Channels, reshard.DirectionForward); n > 0 {
		if len(broken) > 0 {
			fmt.Fprintf(w, "catch-up: ERROR, %d of %d channel(s) do not apply\n", len(broken), n)
		} else {
			fmt.Fprintf(w, "catch-up: lag %.1fs over %d channel(s)\n", fwdLag, n)
		}
		for _, b := range broken {
			fmt.Fprintf(w, "  ERROR %s\n", b)
		}
	}
	rv := st.Reverse
	switch rv.State {
	case reshard.ReverseRunning:
		fmt.Fprintf(w, "reverse replication: running, lag %.1fs over %d channel(s)\n", rv.LagSeconds, rv.Channels)
	case reshard.ReverseFailing:
		fmt.Fprintf(w, "reverse replication: ERROR, the sources miss writes made on the targets\n")
		for _, p := range rv.Problems {
			fmt.Fprintf(w, "  ERROR %s\n", p)
		}
	case "":
	default:
		fmt.Fprintf(w, "reverse replication: %s\n", rv.State)
	}
	for _, c := range st.Channels {
		lag := fmt.Sprintf("lag %.1fs", c.LagSeconds)
		if c.State != pipeline.StateRunning && c.State != pipeline.StatePaused {
			lag = "lag -"
		}
		fmt.Fprintf(w, "  %-28s %-7s %-9s %-8s applied %d txns  checkpoint %s\n", c.Name, c.Direction, c.State, lag, c.AppliedTxns, c.CheckpointPosition)
	}
	ready := "no"
	if st.Rollback.Ready {
		ready = "yes"
	}
	fmt.Fprintf(w, "rollback ready: %s (%s)\n", ready, st.Rollback.Why)
	switch v := st.Verify; {
	case st.Verifying:
		fmt.Fprintf(w, "verify: running (%d rows compared)\n", st.VerifiedRows)
	case v != nil:
		stale := ""
		if st.VerifyStale != "" {
			stale = " STALE: " + st.VerifyStale
		}
		fmt.Fprintf(w, "verify (%s): %d mismatching row(s), %d on the wrong shard%s\n", v.FinishedAt.Format(time.RFC3339), v.Mismatches, v.WrongShard, stale)
		for _, t := range v.Tables {
			fmt.Fprintf(w, "  %-30s %d chunks, %d rows, %d mismatches, %d wrong shard\n", t.Table, t.Chunks, t.Rows, len(t.Mismatched), len(t.WrongShard))
			for _, r := range append(t.Mismatched, t.WrongShard...) {
				fmt.Fprintf(w, "    key %s: %s (targets[%d])\n", r.Key, r.Kind, r.Target)
			}
		}
	}
	if st.Record != "" {
		fmt.Fprintf(w, "record: %s\n", st.Record)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "last error: %s\n", st.LastError)
	}
}

func countDirection(chans []reshard.ChannelStatus, dir string) int {
	n := 0
	for _, c := range chans {
		if c.Direction == dir {
			n++
		}
	}
	return n
}

func migrateRequest(kind string, args []string, stdout, stderr io.Writer) int {
	synopsis := "migrate " + kind + " --plan FILE [--addr HOST:PORT]"
	if kind == "verify" || kind == "cutover" {
		synopsis += " [--no-wait]"
	}
	fs := newFlags("migrate "+kind, synopsis, stdout, stderr)
	path := fs.String("plan", "", "migration plan file (YAML)")
	addr := fs.String("addr", "", "admin address of the running migration (default: the plan's admin.listen)")
	noWait := new(bool)
	if kind == "verify" || kind == "cutover" {
		noWait = fs.Bool("no-wait", false, "return once the request is accepted, without waiting for its outcome")
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	plan, ok := loadPlan(*path, stderr)
	if !ok {
		return 2
	}
	sent := time.Now().UTC()
	req, _ := http.NewRequest(http.MethodPost, adminURL(plan, *addr, "/"+kind), nil)
	if plan.Admin.Token != "" {
		req.Header.Set("Authorization", "Bearer "+plan.Admin.Token)
	}
	resp, err := (&http.Client{Timeout: plan.Cutover.Timeout + 2*time.Minute}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "hamal migrate %s: cannot reach the migration at %s: is `hamal migrate start` running? %v\n", kind, adminURL(plan, *addr, ""), err)
		return 1
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "hamal migrate %s: %s", kind, body)
		return 1
	}
	if kind == "cutover" && !*noWait {
		// Accepted once fenced; the switch finishes when the targets hold
		// the sources' final positions (or the cut-over gives up and
		// unfences, back in catch-up).
		for {
			st, err := fetchMigrationStatus(adminURL(plan, *addr, "/status"), plan.Admin.Token)
			if err != nil {
				fmt.Fprintf(stderr, "hamal migrate cutover: %v\n", err)
				return 1
			}
			if st.CutoverStep == reshard.StepSwitched {
				fmt.Fprintln(stdout, "cut-over done: the targets hold the sources' final positions; reverse replication runs; point writes at the targets")
				return 0
			}
			if st.Phase != reshard.PhaseCutover {
				fmt.Fprintf(stderr, "hamal migrate cutover: did not finish (phase %s): %s\n", st.Phase, st.LastError)
				return 1
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if kind == "verify" && !*noWait {
		return waitVerify(plan, *addr, sent, stdout, stderr)
	}
	if kind == "resume" {
		var out struct {
			Resumed int `json:"resumed"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			fmt.Fprintf(stderr, "hamal migrate resume: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "resumed %d channel(s) that were in state error\n", out.Resumed)
		return 0
	}
	var st reshard.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "hamal migrate %s: %v\n", kind, errors.Join(err))
		return 1
	}
	fmt.Fprintf(stdout, "%s accepted: phase %s %s\n", kind, st.Phase, st.Record)
	return 0
}

// waitVerify waits for the verify requested at sent and prints its
// outcome: exit 0 with no differences, 1 with differences or a failure.
func waitVerify(plan *reshard.Plan, addr string, sent time.Time, stdout, stderr io.Writer) int {
	for {
		st, err := fetchMigrationStatus(adminURL(plan, addr, "/status"), plan.Admin.Token)
		if err != nil {
			fmt.Fprintf(stderr, "hamal migrate verify: %v\n", err)
			return 1
		}
		if !st.Verifying {
			v := st.Verify
			if v == nil || v.StartedAt.Before(sent) {
				fmt.Fprintf(stderr, "hamal migrate verify: the verify ended without a report: %s\n", st.LastError)
				return 1
			}
			fmt.Fprintf(stdout, "verify: %d mismatching row(s), %d on the wrong shard (%s to %s)\n", v.Mismatches, v.WrongShard,
				v.StartedAt.Format(time.RFC3339), v.FinishedAt.Format(time.RFC3339))
			for _, t := range v.Tables {
				fmt.Fprintf(stdout, "  %-30s %d chunks, %d rows, %d mismatches, %d wrong shard\n", t.Table, t.Chunks, t.Rows, len(t.Mismatched), len(t.WrongShard))
				for _, r := range append(t.Mismatched, t.WrongShard...) {
					fmt.Fprintf(stdout, "    key %s: %s (targets[%d])\n", r.Key, r.Kind, r.Target)
				}
			}
			if v.Mismatches > 0 || v.WrongShard > 0 {
				return 1
			}
			return 0
		}
		time.Sleep(200 * time.Millisecond)
	}
}
