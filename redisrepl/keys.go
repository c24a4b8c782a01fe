package redisrepl

import (
	"bytes"
	"strconv"
	"sync"
)

// MarkerPrefix starts every key Hamal itself writes on a Redis target;
// such keys are never replicated as data.
const MarkerPrefix = "hamal:"

// OriginPrefix starts the loop-guard marker key a sink sets as the first
// command of a MULTI block: SET hamal:origin:<channel>:<n> <origin site>.
// A sink writes it only for Txns that carry an origin.
const OriginPrefix = "hamal:origin:"

// FenceKey returns the hash holding a channel's offset fences.
func FenceKey(channel string) string { return MarkerPrefix + "offset:" + channel }

// SlotCount is the number of slots keys are hashed into for conflict
// detection and for the sink's offset fence.
const SlotCount = 16384

// Slot returns the Redis Cluster hash slot of key (CRC16 of the key, or of
// its {hash tag}).
func Slot(key []byte) int {
	if s := bytes.IndexByte(key, '{'); s >= 0 {
		if e := bytes.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	return int(crc16(key)) & (SlotCount - 1)
}

// slotTags holds "slot <n>" for every slot, built on first use.
var slotTags = sync.OnceValue(func() [][]byte {
	tags := make([][]byte, SlotCount)
	buf := make([]byte, 0, SlotCount*len("slot 16383"))
	for i := range tags {
		start := len(buf)
		buf = strconv.AppendInt(append(buf, "slot "...), int64(i), 10)
		tags[i] = buf[start:len(buf):len(buf)]
	}
	return tags
})

// SlotTag is the conflict key of a Redis key: its slot, not the key itself.
// Two commands on keys of one slot are therefore ordered, which is what
// lets the sink keep one offset fence per slot (bounded memory) instead of
// one per key: a fence is only sound at the granularity the DAG orders.
// The returned bytes are shared: callers must not modify them.
func SlotTag(key []byte) []byte { return TagOf(Slot(key)) }

// TagOf returns the tag of slot (0 ≤ slot < SlotCount), shared.
func TagOf(slot int) []byte { return slotTags()[slot] }

// crc16 is CRC-16/XMODEM, the hash Redis Cluster uses for slots.
func crc16(b []byte) uint16 {
	crc := uint16(0)
	tab := crcTable()
	for _, c := range b {
		crc = crc<<8 ^ tab[byte(crc>>8)^c]
	}
	return crc
}

var crcTable = sync.OnceValue(func() *[256]uint16 {
	var t [256]uint16
	for i := range t {
		crc := uint16(i) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return &t
})
