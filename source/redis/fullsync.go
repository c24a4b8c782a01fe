package redis

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hdt3213/rdb/core"
	"github.com/hdt3213/rdb/model"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/redisrepl"
)

// Full sync: reading the master's RDB after +FULLRESYNC into one Txn per
// key.

// readRDB reads the snapshot after +FULLRESYNC and emits one Txn per key.
func (s *Source) readRDB(pos Position, enc *redisrepl.Encoder) error {
	var hdr []byte
	for {
		line, err := s.rd.readLine()
		if err != nil {
			return s.broken(fmt.Errorf("read RDB header: %w", err))
		}
		if len(line) > 0 {
			hdr = line
			break
		}
	}
	var body io.Reader
	switch {
	case bytes.HasPrefix(hdr, []byte("$EOF:")) && len(hdr) == 5+40:
		body = &eofMarkReader{r: s.rd.br, mark: append([]byte(nil), hdr[5:]...)}
	case len(hdr) > 1 && hdr[0] == '$':
		n, err := strconv.ParseInt(string(hdr[1:]), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: bad RDB header %q", errProtocol, hdr)
		}
		body = io.LimitReader(s.rd.br, n)
	default:
		return fmt.Errorf("%w: bad RDB header %q", errProtocol, hdr)
	}
	s.log.Info("full sync: reading the master's RDB", "replid", pos.ReplID, "offset", pos.Offset)
	snapPos := enc.Snapshot(pos.Offset, pos.DB)
	var keys int
	var cbErr error
	now := time.Now()
	dec := core.NewDecoder(body).WithMaxLength(uint64(s.cfg.MaxBulkBytes)).WithoutSizes()
	err := parseRDB(dec, func(obj model.RedisObject) bool {
		s.contact.Store(time.Now().UnixNano())
		if strings.HasPrefix(obj.GetKey(), MarkerPrefix) || expired(obj, now) || !s.cfg.Filter.KeyIn([]byte(obj.GetKey())) {
			return true
		}
		db, replicated := s.cfg.Filter.TargetDB(obj.GetDBIndex())
		if !replicated {
			return true
		}
		cmds, err := objectCommands(obj)
		if err != nil {
			cbErr = fmt.Errorf("full sync from %s: %w", s.cfg.Addr, err)
			return false
		}
		ns := strconv.Itoa(db)
		tag := [][]byte{redisrepl.SlotTag([]byte(obj.GetKey()))}
		t := &event.Txn{Kind: event.KindDML, Pos: snapPos, CommitTime: time.Now(), Origin: s.cfg.Site,
			Changes: make([]event.Change, len(cmds))}
		for i, c := range cmds {
			t.Changes[i] = event.Change{Op: event.OpCommand, Namespace: ns, Args: c, Keys: tag}
		}
		keys++
		if !s.emit(t, pos) {
			cbErr = errClosed
			return false
		}
		return true
	})
	if cbErr != nil {
		return cbErr
	}
	if lerr := dec.LimitError(); lerr != nil {
		// Fatal: the same RDB would come again.
		return fmt.Errorf("full sync from %s: %w: %v; raise source.max_bulk_bytes (now %d) if the master really holds such a value",
			s.cfg.Addr, ErrTooLarge, lerr, s.cfg.MaxBulkBytes)
	}
	if err != nil {
		select {
		case <-s.stop:
			return errClosed
		default:
		}
		return s.broken(fmt.Errorf("parse RDB: %w", err))
	}
	// Consume the rest (checksum, end mark) so the stream starts aligned.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return s.broken(fmt.Errorf("read RDB tail: %w", err))
	}
	s.log.Info("full sync: RDB read", "keys", keys)
	return nil
}

// parseRDB runs the decoder, turning a panic of the third-party parser
// on malformed input into an error.
func parseRDB(dec *core.Decoder, cb func(model.RedisObject) bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: malformed RDB: the parser failed: %v", errProtocol, r)
		}
	}()
	return dec.Parse(cb)
}
