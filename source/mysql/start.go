package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/hamal-replication/hamal/mysqlconn"
)

// start resolves the start position and starts the dump.
//
// MariaDB always streams by GTID when a GTID position is known (resume,
// "current", an explicit GTID set). A file:pos start (and "earliest", which
// is the first binlog at offset 4) seeds the GTID position with
// BINLOG_GTID_POS(file, pos), so positions emitted afterwards still carry
// the full GTID state and a later resume uses GTID. MySQL streams by GTID
// when gtid_mode is ON and a GTID set is known, else by file:pos.
func (r *Reader) start(conn *client.Conn, st serverState, resume *Position) error {
	var useGTID bool
	var gtidText string
	switch {
	case resume != nil:
		r.resumed = true
		r.file, r.pos = resume.File, resume.Pos
		if resume.GTID != "" {
			useGTID, gtidText = true, resume.GTID
		}
	default:
		spec, err := parseStart(r.cfg.Start)
		if err != nil {
			return err
		}
		switch spec.kind {
		case "current":
			file, pos, err := masterStatus(conn)
			if err != nil {
				return err
			}
			r.file, r.pos = file, pos
			if r.flavor == FlavorMariaDB {
				useGTID = true
				if gtidText, err = queryString(conn, "SELECT @@GLOBAL.gtid_binlog_pos"); err != nil {
					return fmt.Errorf("read gtid_binlog_pos: %w", err)
				}
			} else if st.gtidMode {
				useGTID = true
				if gtidText, err = queryString(conn, "SELECT @@GLOBAL.gtid_executed"); err != nil {
					return fmt.Errorf("read gtid_executed: %w", err)
				}
			}
		case "earliest":
			res, err := conn.Execute("SHOW BINARY LOGS")
			if err != nil {
				return fmt.Errorf("show binary logs: %w", err)
			}
			if res.RowNumber() == 0 {
				return errors.New("show binary logs: the source lists no binlog")
			}
			r.file, _ = res.GetString(0, 0)
			r.pos = 4
		case "gtid", "filepos":
			// A place in the binlog the source may not have: say why
			// before the dump is refused with a misleading message, or
			// accepted and replays the wrong transactions.
			pe, err := checkPosition(conn, startPosition(spec), "source.start")
			if err != nil {
				return fmt.Errorf("check source.start: %w", err)
			}
			if pe != nil {
				return pe
			}
			if spec.kind == "gtid" {
				useGTID, gtidText = true, spec.gtid
			} else {
				r.file, r.pos = spec.file, spec.pos
			}
		case "snapshot":
			return errors.New(`source.start "snapshot" is the channel's snapshot phase: the source opens at the position the snapshot hands it, never at "snapshot" itself`)
		}
	}
	if !useGTID && r.flavor == FlavorMariaDB && r.file != "" {
		// Seed the GTID state at file:pos. NULL (unknown position) leaves
		// positions file:pos only; a partial GTID state learned from events
		// would be unsafe to resume from.
		res, err := conn.Execute(fmt.Sprintf("SELECT BINLOG_GTID_POS(%s, %d)", quoteString(r.file), r.pos))
		if err == nil && res.RowNumber() == 1 {
			if null, _ := res.IsNull(0, 0); !null {
				g, _ := res.GetString(0, 0)
				if set, perr := gomysql.ParseMariadbGTIDSet(g); perr == nil {
					r.gtid, r.gtidDirty = set, true
				}
			}
		}
		if r.gtid == nil {
			r.log.Warn("cannot map the start file:pos to a GTID position; positions stay file:pos only", "file", r.file, "pos", r.pos)
		}
	}
	if useGTID {
		set, err := gomysql.ParseGTIDSet(r.flavor, strings.TrimSpace(gtidText))
		if err != nil {
			return fmt.Errorf("parse gtid set %q: %w", gtidText, err)
		}
		r.gtid, r.gtidDirty = set, true
	}
	r.startPos = r.position()
	r.lastSent = r.startPos

	host, portText, err := net.SplitHostPort(r.cfg.Addr)
	if err != nil {
		return fmt.Errorf("source.addr %q: %w", r.cfg.Addr, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return fmt.Errorf("source.addr %q: bad port: %w", r.cfg.Addr, err)
	}
	// The syncer dials its own connections: each goes through mysqlconn's
	// guard (TLS required when configured, no login exposing the
	// password), over dial's deadline.
	r.dialer = &mysqlconn.Dialer{TLS: r.cfg.TLS != nil, Key: "source.tls", Next: r.dial}
	r.syncer = replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID:        r.cfg.ServerID,
		Flavor:          r.flavor,
		Host:            host,
		Port:            uint16(port),
		User:            r.cfg.User,
		Password:        r.cfg.Password,
		Localhost:       "hamal",
		HeartbeatPeriod: heartbeatPeriod,
		// No ReadTimeout: the watchdog does its job (see readTimeout).
		// No GTID set attached to every XID/COMMIT event either: positions
		// are kept here, and the library would clone its set per event.
		DiscardGTIDSet:          true,
		ParseTime:               false,
		UseDecimal:              false,
		TimestampStringLocation: time.UTC,
		// go-mysql's own reconnect resumes from the GTID set *before* the
		// last GTID event it saw and would replay a half-read group into
		// the group being assembled here. Hamal reconnects instead: Next
		// returns a transient error and the engine re-opens at its
		// checkpoint.
		DisableRetrySync:     true,
		MaxReconnectAttempts: 1,
		EventCacheCount:      eventCache,
		Dialer:               r.dialer.Dial,
		TLSConfig:            r.cfg.TLS,
		Logger:               slog.New(minLevelHandler{min: slog.LevelWarn, next: r.log.Handler()}),
	})
	if useGTID {
		r.log.Info("starting binlog dump", "gtid", r.gtid.String(), "flavor", r.flavor)
		// A copy: for MySQL the syncer updates the set it was given from
		// its own goroutine.
		r.streamer, err = r.syncer.StartSyncGTID(r.gtid.Clone())
	} else {
		r.log.Info("starting binlog dump", "file", r.file, "pos", r.pos, "flavor", r.flavor)
		r.streamer, err = r.syncer.StartSync(gomysql.Position{Name: r.file, Pos: r.pos})
	}
	if err != nil {
		return r.classifyStreamError(fmt.Errorf("start binlog dump at %s: %w", r.startPos, r.dialer.Explain(r.cfg.Addr, err)))
	}
	// The dump is running: from now on the watchdog guards its reads.
	r.connMu.Lock()
	if r.dumpConn != nil {
		_ = r.dumpConn.SetDeadline(time.Time{})
	}
	r.connMu.Unlock()
	go r.watch()
	return nil
}

// dial opens the syncer's connections with a deadline of readTimeout, so
// a handshake or the KILL that Close sends over a dead link cannot hang
// (go-mysql's ReadTimeout, which would bound them, is off). The first
// connection is the dump's; start lifts its deadline once the dump runs.
func (r *Reader) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(r.readTimeout))
	r.connMu.Lock()
	if r.dumpConn == nil {
		r.dumpConn = c
	}
	r.connMu.Unlock()
	return c, nil
}

func masterStatus(conn *client.Conn) (string, uint32, error) {
	res, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		var err2 error
		if res, err2 = conn.Execute("SHOW BINARY LOG STATUS"); err2 != nil {
			return "", 0, fmt.Errorf("show master status: %w", err)
		}
	}
	if res.RowNumber() == 0 {
		return "", 0, errors.New("show master status: empty (is log_bin on, and does source.user have REPLICATION CLIENT / BINLOG MONITOR?)")
	}
	file, _ := res.GetString(0, 0)
	pos, _ := res.GetUint(0, 1)
	return file, uint32(pos), nil
}

func queryString(conn *client.Conn, q string) (string, error) {
	res, err := conn.Execute(q)
	if err != nil {
		return "", err
	}
	if res.RowNumber() == 0 {
		return "", nil
	}
	return res.GetString(0, 0)
}
