package main

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
	for _, tc := range []struct {
		name  string
		lines []string
		needs []need
		want  []string // substrings of the fixes, in order; none: nothing missing
	}{
		{"source complete", mariadb, sourceNeeds(true, "hamal"), nil},
		{"source without heartbeat grants", mariadb[:1], sourceNeeds(true, "hamal"), []string{"GRANT CREATE, INSERT, DELETE ON `hamal`.* TO `hsrc`@`%`"}},
		{"source without heartbeat needs none on hamal", mariadb[:1], sourceNeeds(false, "hamal"), nil},
		{"mysql 8 names", []string{"GRANT SELECT, REPLICATION REPLICA, REPLICATION CLIENT ON *.* TO `r`@`%`"}, sourceNeeds(false, "hamal"), nil},
		{"no replication", []string{"GRANT SELECT ON *.* TO `r`@`%`"}, sourceNeeds(false, "hamal"), []string{"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `r`@`%`"}},
		{"sink pattern covers app_1", sink, sinkNeeds([]string{"app_1"}, "hamal", true), nil},
		{"sink pattern escapes _", sink, sinkNeeds([]string{"appx1"}, "hamal", true), []string{
			"GRANT SELECT, INSERT, UPDATE, DELETE ON `appx1`.* TO `hdst`@`%`",
			"GRANT CREATE, DROP, ALTER, INDEX ON `appx1`.*"}},
		{"table and column grants do not cover a schema", sink, sinkNeeds([]string{"other"}, "hamal", true), []string{
			"GRANT SELECT, INSERT, UPDATE, DELETE ON `other`.*", "GRANT CREATE, DROP, ALTER, INDEX ON `other`.*"}},
		{"all privileges globally", []string{"GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"}, append(sourceNeeds(true, "hamal"), sinkNeeds([]string{"x"}, "hamal", true)...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fixes := parseGrants(tc.lines).missing(tc.needs)
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
	g := parseGrants(sink)
	if !g.has("INSERT", "other", "t") || g.has("SELECT", "other", "t") || g.has("INSERT", "other", "u") {
		t.Error("table grant on other.t: INSERT only on t; SELECT (id) is a column grant")
	}
}
