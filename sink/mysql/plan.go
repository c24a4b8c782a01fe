package mysql

import (
	"fmt"
	"strings"

	"github.com/hamal-replication/hamal/event"
)

// tablePlan is everything needed to write rows of one source table
// description to the target, built once per *event.Table.
type tablePlan struct {
	ns      string // schema.table
	cols    []columnPlan
	keyCols []int // row key (PK or NOT NULL UK); nil when keyless
	keyless bool
	allowed bool // keyless and listed in Config.AllowKeyless
	// conflict is the table's conflict rule (with Config.Site set).
	conflict conflictPlan
	ownerCol int // Config.Unsynced owner column, or -1
	// homeCol is the Config.Ownership owner column, or -1; home its rule.
	homeCol int
	home    *Ownership
	// uniques are the unique keys other than the row key (column
	// indexes): with Config.Site set, collisions are conflicts; without,
	// REPLACE's removals of other rows are counted (collision.go).
	uniques [][]int

	quotedName    string // `s`.`t`, names quoted as identifiers
	replacePrefix string // REPLACE INTO `s`.`t` (`a`,`b`) VALUES
	insertPrefix  string // INSERT INTO `s`.`t` (`a`,`b`) VALUES
	deletePrefix  string // DELETE FROM `s`.`t` WHERE (`a`,`b`) IN (
	matchPrefix   string // DELETE FROM `s`.`t` WHERE
}

// binaryDataTypes are the target types whose values are raw bytes.
var binaryDataTypes = map[string]bool{
	"binary": true, "varbinary": true, "tinyblob": true, "blob": true, "mediumblob": true, "longblob": true,
	"geometry": true, "point": true, "linestring": true, "polygon": true, "multipoint": true,
	"multilinestring": true, "multipolygon": true, "geometrycollection": true,
}

func literalKindOf(src event.Column, tc targetColumn) (literalKind, string) {
	switch tc.dataType {
	case "decimal":
		return kindDecimal, ""
	case "date", "time", "datetime", "timestamp":
		return kindTemporal, ""
	case "bit", "set":
		return kindBits, ""
	}
	switch {
	case tc.charset == "binary" || binaryDataTypes[tc.dataType]:
		return kindBinary, ""
	case tc.charset == "utf8mb4":
		return kindUTF8, ""
	case tc.charset != "":
		return kindCharsetHex, tc.charset
	case src.Binary:
		return kindBinary, ""
	}
	return kindPlain, ""
}

// plan returns the cached plan of tbl, building it (and reading the
// target's columns) on first use. Schema mismatches are fatal errors that
// name the table and the fix.
func (s *Sink) plan(slot *pooledConn, tbl *event.Table) (*tablePlan, error) {
	s.mu.Lock()
	p, ok := s.plans[tbl]
	s.mu.Unlock()
	if ok {
		return p, nil
	}
	p = &tablePlan{ns: tbl.Namespace(), cols: make([]columnPlan, len(tbl.Columns)), ownerCol: -1}
	if col, ok := s.cfg.Unsynced[p.ns]; ok && s.cfg.Site != "" {
		for i, c := range tbl.Columns {
			if strings.EqualFold(c.Name, col) {
				p.ownerCol = i
			}
		}
		if p.ownerCol < 0 {
			return nil, &stmtError{table: p.ns, err: fmt.Errorf("owner column %q (sink.unsynced) is not a column of %s", col, p.ns)}
		}
	}
	if err := s.homePlan(p, tbl); err != nil {
		return nil, err
	}
	// A cached description may predate a fix made on the target: on a
	// mismatch, read information_schema again before failing.
	for attempt := 0; ; attempt++ {
		tt, err := s.target(slot, tbl.Schema, tbl.Name)
		if err != nil {
			return nil, &stmtError{table: p.ns, err: err, server: true}
		}
		if tt == nil {
			return nil, &stmtError{table: p.ns, err: missingTableError(tbl.Schema, tbl.Name)}
		}
		var missing []string
		for i, c := range tbl.Columns {
			tc, ok := tt.columns[strings.ToLower(c.Name)]
			if !ok {
				missing = append(missing, c.Name)
				continue
			}
			kind, charset := literalKindOf(c, tc)
			p.cols[i] = columnPlan{quotedName: quoteIdent(c.Name), kind: kind, charset: charset, generated: tc.generated,
				numbered: tc.dataType == "enum" || tc.dataType == "set", padded: tc.dataType == "binary"}
		}
		if len(missing) == 0 {
			break
		}
		s.forgetTarget(p.ns)
		if attempt > 0 {
			return nil, &stmtError{table: p.ns, err: missingColumnsError(tbl.Schema, tbl.Name, missing)}
		}
	}
	quoted := quoteIdent(tbl.Schema) + "." + quoteIdent(tbl.Name)
	var list []string
	for _, c := range p.cols {
		if !c.generated {
			list = append(list, c.quotedName)
		}
	}
	colList := " (" + strings.Join(list, ",") + ") VALUES "
	p.quotedName = quoted
	p.replacePrefix = "REPLACE INTO " + quoted + colList
	p.insertPrefix = "INSERT INTO " + quoted + colList
	p.matchPrefix = "DELETE FROM " + quoted + " WHERE "
	if key, ok := tbl.RowKey(); ok {
		for _, uk := range tbl.UniqueKeys {
			if !sameInts(uk.Columns, key) {
				p.uniques = append(p.uniques, uk.Columns)
			}
		}
	}
	if key, ok := tbl.RowKey(); ok {
		p.keyCols = key
		names := make([]string, len(key))
		for i, k := range key {
			if k >= len(p.cols) {
				return nil, &stmtError{table: p.ns, err: fmt.Errorf("key column index %d out of range", k)}
			}
			names[i] = p.cols[k].quotedName
		}
		if len(names) == 1 {
			p.deletePrefix = p.matchPrefix + names[0] + " IN ("
		} else {
			p.deletePrefix = p.matchPrefix + "(" + strings.Join(names, ",") + ") IN ("
		}
	} else {
		p.keyless = true
		p.allowed = s.keylessAllowed(p.ns)
	}
	if err := s.conflictPlanFor(p, tbl); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.plans) >= 4096 { // bound the cache if a source hands out fresh Tables
		clear(s.plans)
	}
	s.plans[tbl] = p
	s.mu.Unlock()
	return p, nil
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
