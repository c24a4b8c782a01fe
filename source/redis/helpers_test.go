package redis

import (
	"strconv"

	goredis "github.com/redis/go-redis/v9"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func goredisZ(score float64, member string) goredis.Z { return goredis.Z{Score: score, Member: member} }

func xadd(stream, id string, kv ...string) *goredis.XAddArgs {
	vals := make([]any, len(kv))
	for i, v := range kv {
		vals[i] = v
	}
	return &goredis.XAddArgs{Stream: stream, ID: id, Values: vals}
}
