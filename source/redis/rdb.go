package redis

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/hdt3213/rdb/model"
)

// chunk bounds the elements of one rebuilding command, so a big key
// becomes several commands of reasonable size.
const chunk = 512

// objectCommands turns one RDB object into the commands that rebuild it on
// a target idempotently: DEL, then the element commands, then PEXPIREAT
// when the key has a TTL. Applied in one MULTI, replaying them converges.
func objectCommands(obj model.RedisObject) ([][][]byte, error) {
	key := []byte(obj.GetKey())
	var cmds [][][]byte
	del := [][]byte{[]byte("DEL"), key}
	switch o := obj.(type) {
	case *model.StringObject:
		cmds = append(cmds, [][]byte{[]byte("SET"), key, o.Value})
	case *model.ListObject:
		cmds = append(cmds, del)
		cmds = appendChunked(cmds, [][]byte{[]byte("RPUSH"), key}, o.Values, 1)
	case *model.SetObject:
		cmds = append(cmds, del)
		cmds = appendChunked(cmds, [][]byte{[]byte("SADD"), key}, o.Members, 1)
	case *model.ZSetObject:
		cmds = append(cmds, del)
		elems := make([][]byte, 0, 2*len(o.Entries))
		for _, e := range o.Entries {
			elems = append(elems, formatScore(e.Score), []byte(e.Member))
		}
		cmds = appendChunked(cmds, [][]byte{[]byte("ZADD"), key}, elems, 2)
	case *model.HashObject:
		if len(o.FieldExpirations) > 0 {
			return nil, fmt.Errorf("key %q (db %d): hash fields with their own TTL (Redis 7.4 HPEXPIRE) are not supported", o.GetKey(), o.GetDBIndex())
		}
		cmds = append(cmds, del)
		fields := make([]string, 0, len(o.Hash))
		for f := range o.Hash {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		elems := make([][]byte, 0, 2*len(fields))
		for _, f := range fields {
			elems = append(elems, []byte(f), o.Hash[f])
		}
		cmds = appendChunked(cmds, [][]byte{[]byte("HSET"), key}, elems, 2)
	case *model.StreamObject:
		cmds = append(cmds, del)
		cmds = append(cmds, streamCommands(key, o)...)
	case *model.ModuleTypeObject:
		return nil, fmt.Errorf("key %q (db %d) is of module type %q, which Hamal cannot replicate; exclude the key or unload the module's data", o.GetKey(), o.GetDBIndex(), o.ModuleType)
	default:
		return nil, fmt.Errorf("key %q (db %d) is of type %q, which Hamal cannot replicate", obj.GetKey(), obj.GetDBIndex(), obj.GetType())
	}
	if exp := obj.GetExpiration(); exp != nil {
		cmds = append(cmds, [][]byte{[]byte("PEXPIREAT"), key, strconv.AppendInt(nil, exp.UnixMilli(), 10)})
	}
	return cmds, nil
}

func appendChunked(cmds [][][]byte, head [][]byte, elems [][]byte, per int) [][][]byte {
	step := chunk * per
	for i := 0; i < len(elems); i += step {
		end := min(i+step, len(elems))
		c := make([][]byte, 0, len(head)+end-i)
		c = append(append(c, head...), elems[i:end]...)
		cmds = append(cmds, c)
	}
	return cmds
}

func formatScore(f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return []byte("+inf")
	case math.IsInf(f, -1):
		return []byte("-inf")
	}
	return strconv.AppendFloat(nil, f, 'g', 17, 64)
}

func streamID(id *model.StreamId) []byte {
	if id == nil {
		return []byte("0-0")
	}
	b := strconv.AppendUint(nil, id.Ms, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, id.Sequence, 10)
}

// streamCommands rebuilds a stream: its live entries with their ids, its
// last id and counters, and its consumer groups' positions. Pending entry
// lists and consumers are not rebuilt (see docs/redis.md).
func streamCommands(key []byte, o *model.StreamObject) [][][]byte {
	var cmds [][][]byte
	for _, e := range o.Entries {
		for _, m := range e.Msgs {
			if m.Deleted {
				continue
			}
			c := [][]byte{[]byte("XADD"), key, streamID(m.Id)}
			for _, f := range messageFields(e, m) {
				c = append(c, []byte(f), []byte(m.Fields[f]))
			}
			cmds = append(cmds, c)
		}
	}
	if len(cmds) == 0 {
		// An empty stream still exists (with its last id): add a message
		// and trim it away at once.
		last := o.LastId
		if last == nil || (last.Ms == 0 && last.Sequence == 0) {
			last = &model.StreamId{Ms: 0, Sequence: 1}
		}
		cmds = append(cmds, [][]byte{[]byte("XADD"), key, []byte("MAXLEN"), []byte("0"), streamID(last), []byte("f"), []byte("v")})
	}
	setid := [][]byte{[]byte("XSETID"), key, streamID(o.LastId)}
	if o.Version >= 2 {
		setid = append(setid, []byte("ENTRIESADDED"), strconv.AppendUint(nil, o.AddedEntriesCount, 10),
			[]byte("MAXDELETEDID"), streamID(o.MaxDeletedId))
	}
	if o.LastId != nil {
		cmds = append(cmds, setid)
	}
	for _, g := range o.Groups {
		c := [][]byte{[]byte("XGROUP"), []byte("CREATE"), key, []byte(g.Name), streamID(g.LastId)}
		if o.Version >= 2 && g.EntriesRead < 1<<62 { // unknown is stored as -1
			c = append(c, []byte("ENTRIESREAD"), strconv.AppendUint(nil, g.EntriesRead, 10))
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// messageFields returns a message's fields in their stored order where
// the RDB keeps it (the fields of the node's master entry), else sorted:
// the parser hands fields over as a map.
func messageFields(e *model.StreamEntry, m *model.StreamMessage) []string {
	if len(m.Fields) == len(e.Fields) {
		same := true
		for _, f := range e.Fields {
			if _, ok := m.Fields[f]; !ok {
				same = false
				break
			}
		}
		if same {
			return e.Fields
		}
	}
	fields := make([]string, 0, len(m.Fields))
	for f := range m.Fields {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	return fields
}

// expired reports whether obj's TTL has passed; such keys are skipped.
func expired(obj model.RedisObject, now time.Time) bool {
	exp := obj.GetExpiration()
	return exp != nil && !exp.After(now)
}
