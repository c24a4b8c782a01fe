package mysql

import (
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/hamal-replication/hamal/event"
)

// chunk returns the changes of the group read so far as a Partial Txn
// once they reach the chunk size, so a huge transaction is never held
// whole (guarantee 4). Its Pos is the position before the group: a
// checkpoint at a chunk resumes at the transaction's start.
func (r *Reader) chunk(h *replication.EventHeader) *event.Txn {
	r.grp.bytes += int(h.EventSize)
	rows, size := r.cfg.ChunkRows, r.cfg.ChunkBytes
	if rows <= 0 {
		rows = defaultChunkRows
	}
	if size <= 0 {
		size = defaultChunkBytes
	}
	if r.inPayload || len(r.grp.changes) == 0 || (len(r.grp.changes) < rows && r.grp.bytes < size) {
		return nil
	}
	txn := &event.Txn{
		Pos:        EncodePosition(r.grp.startPos),
		CommitTime: time.Unix(int64(h.Timestamp), 0),
		Origin:     r.grp.origin,
		Path:       r.grp.path,
		Kind:       event.KindDML,
		Changes:    r.grp.changes,
		Partial:    true,
	}
	r.grp.changes, r.grp.bytes, r.grp.chunked = nil, 0, true
	return txn
}
