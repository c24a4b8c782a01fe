package harness

import "testing"

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
}
