package engine

import (
	"fmt"
	"io"

	"github.com/hamal-replication/hamal/event"
)

// Report collects the findings of `hamal check`, one line each: "ok" or
// "FAIL" with the fix. It is used by one goroutine at a time.
type Report struct {
	out      io.Writer
	problems int
	// Tables are the tables the source's check found to replicate, for the
	// sink's check to look for on the target; nil when the source cannot
	// list tables (or its check could not reach it).
	Tables []Table
	// Checkpoint is the channel's checkpoint, nil when it has none: the
	// source's start key is used only then, so only then is it checked.
	Checkpoint event.Position
	// StartRefused is set by a source's check that refused its start key.
	StartRefused bool
	// Seeding is set when the channel begins with a copy (Seeding.Seeds,
	// no checkpoint): the sink's check leaves the target's tables to
	// Seeding.CheckSeed, since the copy creates the missing ones.
	Seeding bool
}

// Table is one table a source replicates, as its check found it.
type Table struct {
	Schema, Name string
	Columns      []string
	// HasKey is true when the table has a primary key or a unique key
	// whose columns are all NOT NULL, so its rows can be identified.
	HasKey bool
}

// NewReport returns a report printing to out.
func NewReport(out io.Writer) *Report { return &Report{out: out} }

// Fail records a problem and the fix.
func (r *Report) Fail(what, fix string) {
	r.problems++
	fmt.Fprintf(r.out, "FAIL  %s\n      fix: %s\n", what, fix)
}

// Warn records something unsafe that does not stop `hamal run`, and the
// fix; it is not counted as a problem.
func (r *Report) Warn(what, fix string) {
	fmt.Fprintf(r.out, "WARN  %s\n      fix: %s\n", what, fix)
}

// OK records a check that passed.
func (r *Report) OK(format string, args ...any) { fmt.Fprintf(r.out, "ok    "+format+"\n", args...) }

// Problems is the number of failures so far.
func (r *Report) Problems() int { return r.problems }
