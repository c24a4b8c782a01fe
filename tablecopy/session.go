package tablecopy

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// SourceSession is what SetupSource sets on a connection the copy reads
// from: results in each column's own bytes (character_set_results=binary),
// so text keeps its character set and nothing is converted; TIMESTAMPs in
// UTC; a sql_mode without NO_BACKSLASH_ESCAPES (the literals here use
// backslash escapes), ANSI_QUOTES or PAD_CHAR_TO_FULL_LENGTH (CHAR values
// as stored), whatever the server's default.
const SourceSession = "SET NAMES utf8mb4, character_set_results=binary, time_zone='+00:00', sql_mode='NO_ENGINE_SUBSTITUTION'"

// TargetSession is what SetupTarget sets on a connection the copy writes
// to: UTC, no foreign key checks (chunks land in any order), unique checks
// on (REPLACE relies on them), and the MySQL sink's strict sql_mode: a
// value the source holds fits the same column, so strict mode only fires
// on a real schema mismatch.
const TargetSession = "SET NAMES utf8mb4, time_zone='+00:00', foreign_key_checks=0, unique_checks=1, " +
	"sql_mode='STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES'"

// SetupSource prepares a connection for reading rows (SourceSession).
func SetupSource(c *client.Conn) error {
	if _, err := c.Execute(SourceSession); err != nil {
		return fmt.Errorf("set up source session: %w", err)
	}
	return nil
}

// SetupTarget prepares a connection for writing chunks (TargetSession).
func SetupTarget(c *client.Conn) error {
	if _, err := c.Execute(TargetSession); err != nil {
		return fmt.Errorf("set up target session: %w", err)
	}
	return nil
}

// LocalFiles is a client.Option that lets a connection answer the server's
// LOCAL INFILE request (CLIENT_LOCAL_FILES), which FormatLoad needs. The
// only file such a connection ever sends is a Statement's Infile.
func LocalFiles(c *client.Conn) error { return c.SetCapability(mysql.CLIENT_LOCAL_FILES) }

// Statement is one statement of a chunk.
type Statement struct {
	SQL string
	// Infile, when non-nil, is the file LOAD DATA LOCAL INFILE sends (an
	// empty slice is an empty file); nil for other statements.
	Infile []byte
}

// Exec runs one statement on c, answering a LOCAL INFILE request with
// s.Infile.
func Exec(c *client.Conn, s Statement) error {
	if s.Infile == nil {
		_, err := c.Execute(s.SQL)
		return err
	}
	_, err := c.ExecQueryRelayLocalInfile(s.SQL, func([]byte) (io.Reader, error) { return bytes.NewReader(s.Infile), nil })
	return err
}

// LocalInfileRefused reports whether err is a server refusing LOAD DATA
// LOCAL (local_infile off, or the capability disabled): the copy then
// writes that target with REPLACE statements instead.
func LocalInfileRefused(err error) bool {
	var me *mysql.MyError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Code {
	case 1148, // ER_NOT_ALLOWED_COMMAND
		3948, // MySQL 8: loading local data is disabled
		4166: // MariaDB: local infile disabled on server or client
		return true
	}
	return false
}
