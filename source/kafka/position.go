package kafka

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hamal-replication/hamal/event"
)

// positionPrefix starts every position this source writes, so a
// checkpoint of another source kind is recognised and refused.
const positionPrefix = "kafka"

type topicPartition struct {
	topic     string
	partition int
}

func (tp topicPartition) String() string { return tp.topic + "/" + strconv.Itoa(tp.partition) }

// encodePosition renders offsets (next offset to read, per partition) as
// "kafka t/p=o t/p=o", sorted, so equal vectors give equal positions.
func encodePosition(offsets map[topicPartition]int64) event.Position {
	tps := make([]topicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].topic != tps[j].topic {
			return tps[i].topic < tps[j].topic
		}
		return tps[i].partition < tps[j].partition
	})
	b := []byte(positionPrefix)
	for _, tp := range tps {
		b = append(b, ' ')
		b = append(b, tp.topic...)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(tp.partition), 10)
		b = append(b, '=')
		b = strconv.AppendInt(b, offsets[tp], 10)
	}
	return event.Position(b)
}

// parsePosition reverses encodePosition.
func parsePosition(p event.Position) (map[topicPartition]int64, error) {
	fields := strings.Fields(string(p))
	if len(fields) == 0 || fields[0] != positionPrefix {
		return nil, fmt.Errorf("checkpoint position %q is not a Kafka source position; the checkpoint belongs to another source kind: give this channel a new name or remove its checkpoint", p)
	}
	offsets := make(map[topicPartition]int64, len(fields)-1)
	for _, f := range fields[1:] {
		slash := strings.LastIndexByte(f, '/')
		eq := strings.LastIndexByte(f, '=')
		if slash <= 0 || eq < slash {
			return nil, fmt.Errorf("checkpoint position %q: bad entry %q, want topic/partition=offset", p, f)
		}
		part, err1 := strconv.Atoi(f[slash+1 : eq])
		off, err2 := strconv.ParseInt(f[eq+1:], 10, 64)
		if err1 != nil || err2 != nil || part < 0 || off < 0 {
			return nil, fmt.Errorf("checkpoint position %q: bad entry %q, want topic/partition=offset", p, f)
		}
		offsets[topicPartition{f[:slash], part}] = off
	}
	return offsets, nil
}
