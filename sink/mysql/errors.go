package mysql

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/sink"
)

// ErrLeaseHeld is sink.ErrLeaseHeld: another process holds the channel's
// GET_LOCK on the target.
var ErrLeaseHeld = sink.ErrLeaseHeld

// Server error codes the sink reacts to.
const (
	erAccessDenied         = 1045
	erBadDB                = 1049
	erDBCreateExists       = 1007
	erDBDropExists         = 1008
	erTableExists          = 1050
	erBadTable             = 1051
	erServerShutdown       = 1053
	erDupFieldName         = 1060
	erDupKeyName           = 1061
	erCantDropFieldOrKey   = 1091
	erNoSuchTable          = 1146
	erLockWaitTimeout      = 1205
	erLockDeadlock         = 1213
	erOptionPrevents       = 1290 // --read-only
	erQueryInterrupted     = 1317
	erReadOnlyMode         = 1836
	erConnectionKilled     = 1927 // MariaDB
	erTooManyConnections   = 1040
	erNetReadError         = 1158
	erNetReadInterrupted   = 1159
	erNetErrorOnWrite      = 1160
	erNetWriteInterrupted  = 1161
	erLockAborted          = 1689
	erWrongValueForVar     = 1231 // the lease proof's SET autocommit=2
	erServerGone           = 2006
	erServerLost           = 2013
	erClientInteractionEnd = 4031 // MySQL 8: disconnected for inactivity
)

// errClass is what the sink does with an error from the target: the
// target protocol's classes.
type errClass = sink.Class

const (
	classFatal     = sink.ClassFatal     // stop the channel
	classTransient = sink.ClassTransient // retry the batch; the connection is usable
	classConnLost  = sink.ClassConnLost  // retry the batch on a new connection
)

// classify sorts an error returned by a go-mysql connection (Execute,
// Ping); errors built by the sink itself never come here.
func classify(err error) errClass {
	var myErr *gomysql.MyError
	if errors.As(err, &myErr) {
		switch myErr.Code {
		case erLockDeadlock, erLockWaitTimeout, erQueryInterrupted, erLockAborted, erTooManyConnections:
			return classTransient
		case erServerGone, erServerLost, erConnectionKilled, erServerShutdown,
			erNetReadError, erNetReadInterrupted, erNetErrorOnWrite, erNetWriteInterrupted,
			erClientInteractionEnd,
			// Read-only during a failover: the connection may point at the
			// old primary (through a proxy or VIP); reconnect.
			erOptionPrevents, erReadOnlyMode:
			return classConnLost
		}
		return classFatal
	}
	// Anything else out of a go-mysql connection comes from the transport
	// or the protocol (EOF, reset, bad sequence): the connection is gone.
	return classConnLost
}

// isConnError reports errors of the transport rather than of a statement.
func isConnError(err error) bool {
	var netErr net.Error
	return errors.Is(err, gomysql.ErrBadConn) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.As(err, &netErr)
}

// serverCode returns the server error code of err, or 0.
func serverCode(err error) uint16 {
	var myErr *gomysql.MyError
	if errors.As(err, &myErr) {
		return myErr.Code
	}
	return 0
}

// stmtError carries the table a failed statement (or a failed attempt to
// build one) was about. server is set when err came from the connection
// and must be classified; errors the sink raised itself are fatal.
type stmtError struct {
	table  string
	err    error
	server bool
}

func (e *stmtError) Error() string { return e.err.Error() }
func (e *stmtError) Unwrap() error { return e.err }
