package mysql

import (
	"strings"
	"testing"
)

func TestGrants(t *testing.T) {
	mariadb := []string{
		"GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO `hsrc`@`%` IDENTIFIED BY PASSWORD '*ABC'",
		"GRANT CREATE, INSERT, DELETE ON `hamal`.* TO `hsrc`@`%`",
	}
	sink := []string{
		"GRANT USAGE ON *.* TO `hdst`@`%`",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON `app\\_%`.* TO `hdst`@`%`",
		"GRANT SELECT (id), INSERT ON `other`.`t` TO `hdst`@`%`",
		"GRANT ALL PRIVILEGES ON `hamal`.* TO `hdst`@`%`",
		"GRANT `some_role` TO `hdst`@`%`",
	}
	apply := func(schema string) []Need {
		return []Need{{Privs: []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, DB: schema, Table: "*", Why: "apply rows"},
			{Privs: []string{"CREATE", "DROP", "ALTER", "INDEX"}, DB: schema, Table: "*", Why: "apply replicated DDL"}}
	}
	for _, tc := range []struct {
		name  string
		lines []string
		needs []Need
		want  []string // substrings of the fixes, in order; none: nothing missing
	}{
		{"source complete", mariadb, SourceNeeds(true, "hamal"), nil},
		{"source without heartbeat grants", mariadb[:1], SourceNeeds(true, "hamal"), []string{"GRANT CREATE, INSERT, DELETE ON `hamal`.* TO `hsrc`@`%`"}},
		{"source without heartbeat needs none on hamal", mariadb[:1], SourceNeeds(false, "hamal"), nil},
		{"mysql 8 names", []string{"GRANT SELECT, REPLICATION REPLICA, REPLICATION CLIENT ON *.* TO `r`@`%`"}, SourceNeeds(false, "hamal"), nil},
		{"no replication", []string{"GRANT SELECT ON *.* TO `r`@`%`"}, SourceNeeds(false, "hamal"), []string{"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `r`@`%`"}},
		{"pattern covers app_1", sink, apply("app_1"), nil},
		{"pattern escapes _", sink, apply("appx1"), []string{
			"GRANT SELECT, INSERT, UPDATE, DELETE ON `appx1`.* TO `hdst`@`%`",
			"GRANT CREATE, DROP, ALTER, INDEX ON `appx1`.*"}},
		{"table and column grants do not cover a schema", sink, apply("other"), []string{
			"GRANT SELECT, INSERT, UPDATE, DELETE ON `other`.*", "GRANT CREATE, DROP, ALTER, INDEX ON `other`.*"}},
		{"all privileges globally", []string{"GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"}, append(SourceNeeds(true, "hamal"), apply("x")...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fixes := ParseGrants(tc.lines).Missing(tc.needs)
			if len(fixes) != len(tc.want) {
				t.Fatalf("fixes %q, want %d like %q", fixes, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(fixes[i], w) {
					t.Errorf("fix %d = %q, want it to contain %q", i, fixes[i], w)
				}
			}
		})
	}
	// A table grant covers that table only.
	g := ParseGrants(sink)
	if !g.Has("INSERT", "other", "t") || g.Has("SELECT", "other", "t") || g.Has("INSERT", "other", "u") {
		t.Error("table grant on other.t: INSERT only on t; SELECT (id) is a column grant")
	}
	if g.User() != "`hdst`@`%`" {
		t.Errorf("User() = %q", g.User())
	}
}
