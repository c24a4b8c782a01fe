package mysql

import (
	"strconv"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/hamal-replication/hamal/event"
)

// group is the event group (transaction) being assembled.
type group struct {
	started    bool // a GTID event or BEGIN opened it
	begun      bool // BEGIN seen: ends with XID or COMMIT
	standalone bool // MariaDB FL_STANDALONE: the next statement ends it
	mariaGTID  *gomysql.MariadbGTID
	mysqlGTID  string // "uuid:gno"
	changes    []event.Change
	// bytes counts the binlog bytes of the row events behind changes;
	// chunked tells that Partial Txns of this group were returned.
	bytes    int
	chunked  bool
	origin   string
	path     []string // from the origin marker row, origin first
	startPos Position // position before the group

	heartbeat time.Time // newest hamal.heartbeat row of the group
}

// handle folds one binlog event into the group being assembled and
// returns a Txn when the event ends a group. commitPos overrides the
// header's log position (events inside a MySQL transaction payload).
func (r *Reader) handle(ev *replication.BinlogEvent, commitPos uint32) (*event.Txn, error) {
	h := ev.Header
	if commitPos == 0 {
		commitPos = h.LogPos
	}
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		// The dump starts with a fake rotate (timestamp 0) naming the file;
		// on a GTID start its offset is 4 whatever the real start is, so
		// it only counts when it changes the file.
		file := string(e.NextLogName)
		if h.Timestamp != 0 || file != r.file {
			r.file, r.pos = file, uint32(e.Position)
		}
	case *replication.MariadbGTIDEvent:
		r.beginGroup()
		g := e.GTID
		r.grp.mariaGTID = &g
		r.grp.standalone = e.IsStandalone()
	case *replication.GTIDEvent:
		r.beginGroup()
		if h.EventType == replication.GTID_EVENT {
			r.grp.mysqlGTID = formatUUID(e.SID) + ":" + strconv.FormatInt(e.GNO, 10)
		}
	case *replication.GtidTaggedLogEvent:
		r.beginGroup()
		r.grp.mysqlGTID = formatUUID(e.SID) + ":" + e.Tag.String() + ":" + strconv.FormatInt(e.GNO, 10)
	case *replication.QueryEvent:
		return r.query(h, e, commitPos)
	case *replication.TableMapEvent:
		return nil, r.tableMap(e)
	case *replication.RowsEvent:
		if err := r.rows(h, e); err != nil {
			return nil, err
		}
		return r.chunk(h), nil
	case *replication.XIDEvent:
		return r.commit(h, commitPos), nil
	case *replication.TransactionPayloadEvent:
		// A payload event holds a whole (compressed) transaction that is
		// in memory already: it is not chunked, so it yields one Txn.
		r.inPayload = true
		defer func() { r.inPayload = false }()
		var out *event.Txn
		for _, inner := range e.Events {
			txn, err := r.handle(inner, h.LogPos)
			if err != nil {
				return nil, err
			}
			if txn != nil {
				out = txn
			}
		}
		return out, nil
	case *replication.HeartbeatEvent:
		return r.heartbeat(h, e), nil
	}
	return nil, nil
}

func (r *Reader) beginGroup() {
	if r.grp.started && (len(r.grp.changes) > 0 || r.grp.chunked) {
		// Chunks of it already returned stay applied: the source never
		// committed them, and nothing here can take them back.
		r.log.Warn("binlog group without commit event; dropping its changes", "after", r.lastSent.String(),
			"chunks_already_returned", r.grp.chunked)
	}
	r.grp = group{started: true, startPos: r.position()}
}

// commit ends the current group at commitPos and returns its Txn: DML
// when it kept changes, else a Heartbeat that only moves the position.
func (r *Reader) commit(h *replication.EventHeader, commitPos uint32) *event.Txn {
	grp := r.grp
	r.grp = group{}
	if r.gtid != nil {
		r.gtidDirty = true
		switch set := r.gtid.(type) {
		case *gomysql.MariadbGTIDSet:
			if grp.mariaGTID != nil {
				if err := set.AddSet(grp.mariaGTID); err != nil {
					r.log.Warn("cannot add gtid to position", "gtid", grp.mariaGTID.String(), "error", err)
				}
			}
		case *gomysql.MysqlGTIDSet:
			if grp.mysqlGTID != "" {
				if err := set.Update(grp.mysqlGTID); err != nil {
					r.log.Warn("cannot add gtid to position", "gtid", grp.mysqlGTID, "error", err)
				}
			}
		}
	}
	if commitPos > 0 {
		r.pos = commitPos
	}
	pos := r.position()
	r.lastSent = pos
	txn := &event.Txn{
		Pos:        EncodePosition(pos),
		CommitTime: time.Unix(int64(h.Timestamp), 0),
		Origin:     grp.origin,
		Path:       grp.path,
		Kind:       event.KindHeartbeat,
		Heartbeat:  grp.heartbeat,
	}
	if len(grp.changes) > 0 {
		txn.Kind = event.KindDML
		txn.Changes = grp.changes
	}
	return txn
}

// heartbeat handles a binlog heartbeat: sent by the source only while the
// dump waits at the end of the binlog, so its log position is an event
// boundary after everything received. It yields a Heartbeat Txn only when
// the position moved since the last Txn (rotation, skipped events).
func (r *Reader) heartbeat(h *replication.EventHeader, e *replication.HeartbeatEvent) *event.Txn {
	if r.grp.started {
		return nil
	}
	if e.Filename != "" && h.LogPos > 0 && (r.file == "" || e.Filename == r.file) {
		r.file, r.pos = e.Filename, h.LogPos
	}
	pos := r.position()
	if pos == r.lastSent {
		return nil
	}
	r.lastSent = pos
	return &event.Txn{Pos: EncodePosition(pos), CommitTime: time.Now(), Kind: event.KindHeartbeat}
}
