package mysql

import (
	"strings"
	"testing"

	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// TestSinkNeeds: the sink account's needs, read against real SHOW GRANTS
// lines by the source package's parser.
func TestSinkNeeds(t *testing.T) {
	sink := []string{
		"GRANT USAGE ON *.* TO `hdst`@`%`",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON `app\\_%`.* TO `hdst`@`%`",
		"GRANT SELECT (id), INSERT ON `other`.`t` TO `hdst`@`%`",
		"GRANT ALL PRIVILEGES ON `hamal`.* TO `hdst`@`%`",
	}
	for _, tc := range []struct {
		name  string
		lines []string
		needs []srcmysql.Need
		want  []string
	}{
		{"sink pattern covers app_1", sink, sinkNeeds([]string{"app_1"}, "hamal", true), nil},
		{"sink pattern escapes _", sink, sinkNeeds([]string{"appx1"}, "hamal", true), []string{
			"GRANT SELECT, INSERT, UPDATE, DELETE ON `appx1`.* TO `hdst`@`%`",
			"GRANT CREATE, DROP, ALTER, INDEX ON `appx1`.*"}},
		{"no hamal schema grant with sites", sink[:2], sinkNeeds([]string{"app_1"}, "hamal", true), []string{
			"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON `hamal`.*"}},
		{"no hamal schema needed without sites", sink[:2], sinkNeeds([]string{"app_1"}, "hamal", false), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fixes := srcmysql.ParseGrants(tc.lines).Missing(tc.needs)
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
}
