package harness

import (
	"testing"
	"time"
)

func TestMariaDBStartsWithBinlog(t *testing.T) {
	s := MariaDB(t, Options{ServerID: 7})
	s.MustExec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO app.t VALUES (1,'a'),(2,NULL)")
	rows := s.MustQuery(t, "SELECT @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@server_id")
	want := []string{"ROW", "FULL", "FULL", "7"}
	for i, w := range want {
		if rows[0][i] != w {
			t.Errorf("variable %d = %q, want %q", i, rows[0][i], w)
		}
	}
	sum, n, err := s.TableChecksum("app.t", "id")
	if err != nil || n != 2 || sum == "" {
		t.Fatalf("checksum = %q, %d, %v", sum, n, err)
	}
	pos, err := s.GTIDPos()
	if err != nil || pos == "" {
		t.Fatalf("gtid pos = %q, %v", pos, err)
	}

	// The server's CPU time grows with the work it is given.
	before, err := s.CPUTime()
	if err != nil || before <= 0 {
		t.Fatalf("CPU time = %s, %v; want a positive time", before, err)
	}
	for i := 0; i < 50; i++ {
		s.MustQuery(t, "SELECT BENCHMARK(200000, MD5('hamal'))")
	}
	if after, err := s.CPUTime(); err != nil || after-before < 10*time.Millisecond {
		t.Fatalf("CPU time went from %s to %s (%v) over 10M MD5s; want it to grow", before, after, err)
	}
}

// TestMatrixSettings: each side of every matrix row runs with the settings
// it names (the server's own variables say so).
func TestMatrixSettings(t *testing.T) {
	for _, r := range Matrix {
		for side, st := range map[string]Settings{"source": r.Source, "target": r.Target} {
			if st == (Settings{}) && r.Name != "utf8mb4-utc" {
				continue
			}
			t.Run(r.Name+"/"+side, func(t *testing.T) {
				s := MariaDB(t, Options{ServerID: 8, Settings: st})
				got := s.MustQuery(t, "SELECT @@character_set_server, @@global.time_zone, @@system_time_zone, @@global.sql_mode, @@lower_case_table_names, @@binlog_row_metadata")[0]
				want := []string{"utf8mb4", "SYSTEM", "UTC", got[3], "0", "FULL"}
				if st.NoCharset {
					want[0] = "latin1"
				}
				if st.TimeZone != "" {
					want[1] = st.TimeZone
				}
				if st.SystemTZ != "" {
					want[2] = "CST" // Asia/Shanghai's abbreviation
				}
				if st.SQLMode != "" {
					want[3] = st.SQLMode
				}
				if st.LowerCaseTableNames != 0 {
					want[4] = "1"
				}
				if st.RowMetadata != "" {
					want[5] = st.RowMetadata
				}
				for i := range want {
					if got[i] != want[i] {
						t.Errorf("variable %d = %q, want %q (all: %v)", i, got[i], want[i], got)
					}
				}
			})
		}
	}
}
