package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hamal-replication/hamal/test/harness"
)

// Diff is one table that differs between source and target.
type Diff struct {
	Table                  string
	SourceRows, TargetRows int
	SourceSum, TargetSum   string
}

func (d Diff) String() string {
	return fmt.Sprintf("%s: source %d rows (%s), target %d rows (%s)", d.Table, d.SourceRows, d.SourceSum, d.TargetRows, d.TargetSum)
}

// Compare checksums every table (name → ORDER BY) on both servers. rows is
// the number of source rows compared.
func Compare(src, dst *harness.Server, tables map[string]string) (rows int, diffs []Diff, err error) {
	names := make([]string, 0, len(tables))
	for name := range tables {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		want, wantN, err := src.TableChecksum(name, tables[name])
		if err != nil {
			return rows, diffs, fmt.Errorf("source %s: %w", name, err)
		}
		got, gotN, err := dst.TableChecksum(name, tables[name])
		if err != nil {
			return rows, diffs, fmt.Errorf("target %s: %w", name, err)
		}
		rows += wantN
		if want != got || wantN != gotN {
			diffs = append(diffs, Diff{name, wantN, gotN, want, got})
		}
	}
	return rows, diffs, nil
}

// WaitEqual compares until no table differs or timeout passes, and returns
// the last comparison.
func WaitEqual(src, dst *harness.Server, tables map[string]string, timeout time.Duration) (rows int, diffs []Diff, err error) {
	deadline := time.Now().Add(timeout)
	for {
		rows, diffs, err = Compare(src, dst, tables)
		if (err == nil && len(diffs) == 0) || time.Now().After(deadline) {
			return rows, diffs, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Report is what a scenario prints.
type Report struct {
	Scenario   string
	Faults     int64 // faults injected
	Txns       int64 // source transactions the workload committed
	Rows       int   // source rows compared with the target
	Tables     int
	Mismatches int // tables that differ; must be 0
	// Recovery lists, per fault, how long a row written to the source when
	// the fault ended took to reach the target.
	Recovery []Recovery
	Notes    []string
}

// Recovery is one fault's recovery time.
type Recovery struct {
	Fault string
	Took  time.Duration
}

// Note adds a free-form figure to the report.
func (r *Report) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// AddRecovery records a fault's recovery time.
func (r *Report) AddRecovery(fault string, took time.Duration) {
	r.Recovery = append(r.Recovery, Recovery{fault, took})
}

// MaxRecovery is the longest recovery.
func (r *Report) MaxRecovery() time.Duration {
	var m time.Duration
	for _, rc := range r.Recovery {
		m = max(m, rc.Took)
	}
	return m
}

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CHAOS %s: faults=%d txns=%d rows_compared=%d tables=%d mismatches=%d max_recovery=%s\n",
		r.Scenario, r.Faults, r.Txns, r.Rows, r.Tables, r.Mismatches, r.MaxRecovery().Round(10*time.Millisecond))
	for _, rc := range r.Recovery {
		fmt.Fprintf(&b, "  recovery %-34s %s\n", rc.Fault, rc.Took.Round(10*time.Millisecond))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  %s\n", n)
	}
	return b.String()
}
