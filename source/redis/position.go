package redis

import (
	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/redisrepl"
)

// Position is the source's resume position; package redisrepl owns it
// and its codec, which the Redis sink reads too.
type Position = redisrepl.Position

// EncodePosition is redisrepl.EncodePosition.
func EncodePosition(p Position) event.Position { return redisrepl.EncodePosition(p) }

// DecodePosition is redisrepl.DecodePosition.
func DecodePosition(ep event.Position) (Position, error) { return redisrepl.DecodePosition(ep) }

// MarkerPrefix starts every key Hamal itself writes on a Redis target;
// such keys are never replicated as data.
const MarkerPrefix = redisrepl.MarkerPrefix

// OriginPrefix starts the loop-guard marker key a sink sets as the first
// command of a MULTI block: SET hamal:origin:<channel>:<n> <origin site>.
const OriginPrefix = redisrepl.OriginPrefix
