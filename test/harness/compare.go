package harness

import (
	"fmt"
	"strings"
)

// TableChecksum returns a checksum of a table's full contents in key order,
// computed by the server: the MD5 of every row's hex-encoded columns. Two
// servers with equal checksums hold byte-identical rows.
func (s *Server) TableChecksum(table string, orderBy string) (string, int, error) {
	cols, err := s.Query(fmt.Sprintf(
		"SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE CONCAT(TABLE_SCHEMA,'.',TABLE_NAME)='%s' ORDER BY ORDINAL_POSITION", table))
	if err != nil {
		return "", 0, err
	}
	if len(cols) == 0 {
		return "", 0, fmt.Errorf("table %s not found on %s", table, s.Addr)
	}
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprintf("IFNULL(HEX(`%s`),'\\N')", c[0])
	}
	q := fmt.Sprintf("SELECT COUNT(*), IFNULL(MD5(GROUP_CONCAT(MD5(CONCAT_WS('|',%s)) ORDER BY %s SEPARATOR '')),'') FROM %s",
		strings.Join(parts, ","), orderBy, table)
	if err := s.Exec("SET GLOBAL group_concat_max_len = 1073741824"); err != nil {
		return "", 0, err
	}
	// TIMESTAMPs read in UTC, so servers of different time zones that hold
	// the same instants agree.
	c, err := s.Connect("")
	if err != nil {
		return "", 0, err
	}
	defer c.Close()
	if _, err := c.Execute("SET time_zone='+00:00'"); err != nil {
		return "", 0, err
	}
	r, err := c.Execute(q)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", q, err)
	}
	n, _ := r.GetInt(0, 0)
	sum, _ := r.GetString(0, 1)
	return strings.Clone(sum), int(n), nil
}
