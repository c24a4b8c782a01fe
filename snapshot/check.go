package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	srcmysql "github.com/hamal-replication/hamal/source/mysql"
	"github.com/hamal-replication/hamal/tablecopy"
)

// Report is what Check found.
type Report struct {
	// Tables is how many tables the snapshot would copy.
	Tables int
	// Create lists the target tables the snapshot would create.
	Create []string
	// Problems are what a start would refuse, each with its fix.
	Problems []srcmysql.Problem
}

// Check reports, writing nothing, what a snapshot of tables (the source's
// tables matching the filters, as srcmysql.Preflight lists them) would
// refuse: a table without a key to walk, a target table whose definition
// differs from the source's (naming both), a target table that is not
// empty, a missing table with sink.create_tables off; and which tables it
// would create. hamal check runs it; a first start runs it before taking
// the position.
func Check(ctx context.Context, cfg Config, tables []srcmysql.TableInfo) (*Report, error) {
	s := &Snapshot{cfg: cfg}
	return s.check(ctx, tables)
}

func (s *Snapshot) check(ctx context.Context, tables []srcmysql.TableInfo) (*Report, error) {
	src, err := s.source(ctx)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := s.cfg.Target(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the target: %w", err)
	}
	defer dst.Close()
	rep := &Report{Tables: len(tables)}
	for _, ti := range tables {
		name := ti.Schema + "." + ti.Name
		if _, err := tablecopy.Describe(src, ti.Schema, ti.Name); errors.Is(err, tablecopy.ErrNoKey) {
			rep.Problems = append(rep.Problems, srcmysql.Problem{
				What: fmt.Sprintf("source table %s has neither a primary key nor a NOT NULL unique key: the snapshot copies in key order", name),
				Fix:  "add a primary key to it, or exclude the table (source.exclude) and seed it by hand",
			})
			continue
		} else if err != nil {
			return nil, err
		}
		tdef, err := readDefinition(dst, ti.Schema, ti.Name)
		if err != nil {
			return nil, err
		}
		if tdef == nil {
			if s.cfg.CreateTables {
				rep.Create = append(rep.Create, name)
			} else {
				rep.Problems = append(rep.Problems, missingProblem(name))
			}
			continue
		}
		if p, err := s.compare(src, dst, ti.Schema, ti.Name, tdef); err != nil {
			return nil, err
		} else if p != nil {
			rep.Problems = append(rep.Problems, *p)
			continue
		}
		full, err := hasRows(dst, ti.Schema, ti.Name)
		if err != nil {
			return nil, err
		}
		if full {
			rep.Problems = append(rep.Problems, srcmysql.Problem{
				What: fmt.Sprintf("target table %s is not empty: the snapshot copies into empty tables, and rows the source lacks would stay", name),
				Fix:  fmt.Sprintf("empty it (TRUNCATE TABLE %s) or drop it, or exclude the table (source.exclude)", tablecopy.QuoteIdent(ti.Schema)+"."+tablecopy.QuoteIdent(ti.Name)),
			})
		}
	}
	return rep, nil
}

// compare returns the problem of a target table whose definition (tdef)
// differs from the source's, naming both definitions; nil when they match.
func (s *Snapshot) compare(src, dst *client.Conn, schema, table string, tdef *definition) (*srcmysql.Problem, error) {
	sdef, err := readDefinition(src, schema, table)
	if err != nil {
		return nil, err
	}
	if sdef == nil {
		return nil, fmt.Errorf("source table %s.%s: %w", schema, table, tablecopy.ErrNoTable)
	}
	diffs := sdef.diff(tdef)
	if len(diffs) == 0 {
		return nil, nil
	}
	srcDDL, err := showCreate(src, schema, table)
	if err != nil {
		return nil, err
	}
	dstDDL, err := showCreate(dst, schema, table)
	if err != nil {
		return nil, err
	}
	return &srcmysql.Problem{
		What: fmt.Sprintf("target table %s.%s differs from the source's (%s)\n      source: %s\n      target: %s",
			schema, table, strings.Join(diffs, "; "), oneLine(srcDDL), oneLine(dstDDL)),
		Fix: "make the target table match the source's definition, or drop it so the snapshot creates it, or exclude the table (source.exclude)",
	}, nil
}

// oneLine joins a SHOW CREATE TABLE statement into one line.
func oneLine(ddl string) string {
	lines := strings.Split(ddl, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " ")
}
