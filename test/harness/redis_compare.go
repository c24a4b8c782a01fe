package harness

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisKey is one key's state as CompareRedis sees it.
type RedisKey struct {
	Type  string
	Dump  string // DUMP payload
	Value string // logical value, canonical (sorted where order is not data)
	// ExpireAt is the absolute expiry (PEXPIRETIME), -1 without a TTL; it
	// compares without regard to when each side was read.
	ExpireAt time.Duration
}

// RedisKeys reads every key of databases 0..15 except those starting with
// skipPrefix ("hamal:"), keyed "db/key".
func (r *Redis) RedisKeys(ctx context.Context, skipPrefix string) (map[string]RedisKey, error) {
	out := map[string]RedisKey{}
	for db := 0; db < 16; db++ {
		c := r.ClientDB(db)
		err := func() error {
			defer c.Close()
			iter := c.Scan(ctx, 0, "*", 1000).Iterator()
			for iter.Next(ctx) {
				k := iter.Val()
				if skipPrefix != "" && strings.HasPrefix(k, skipPrefix) {
					continue
				}
				st, err := readKey(ctx, c, k)
				if err == redis.Nil {
					continue // expired meanwhile
				}
				if err != nil {
					return fmt.Errorf("db %d key %q: %w", db, k, err)
				}
				out[fmt.Sprintf("%d/%s", db, k)] = st
			}
			return iter.Err()
		}()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readKey(ctx context.Context, c *redis.Client, k string) (RedisKey, error) {
	var st RedisKey
	var err error
	if st.Type, err = c.Type(ctx, k).Result(); err != nil {
		return st, err
	}
	if st.Type == "none" {
		return st, redis.Nil
	}
	if st.Dump, err = c.Dump(ctx, k).Result(); err != nil {
		return st, err
	}
	if st.ExpireAt, err = c.PExpireTime(ctx, k).Result(); err != nil {
		return st, err
	}
	var parts []string
	switch st.Type {
	case "string":
		v, err := c.Get(ctx, k).Result()
		if err != nil {
			return st, err
		}
		parts = []string{v}
	case "list":
		if parts, err = c.LRange(ctx, k, 0, -1).Result(); err != nil {
			return st, err
		}
	case "set":
		if parts, err = c.SMembers(ctx, k).Result(); err != nil {
			return st, err
		}
		sort.Strings(parts)
	case "zset":
		zs, err := c.ZRangeWithScores(ctx, k, 0, -1).Result()
		if err != nil {
			return st, err
		}
		for _, z := range zs {
			parts = append(parts, fmt.Sprintf("%v=%v", z.Member, z.Score))
		}
	case "hash":
		m, err := c.HGetAll(ctx, k).Result()
		if err != nil {
			return st, err
		}
		for f, v := range m {
			parts = append(parts, f+"="+v)
		}
		sort.Strings(parts)
	case "stream":
		msgs, err := c.XRange(ctx, k, "-", "+").Result()
		if err != nil {
			return st, err
		}
		for _, m := range msgs {
			var fv []string
			for f, v := range m.Values {
				fv = append(fv, fmt.Sprintf("%s=%v", f, v))
			}
			sort.Strings(fv)
			parts = append(parts, m.ID+"{"+strings.Join(fv, ",")+"}")
		}
		info, err := c.XInfoStream(ctx, k).Result()
		if err != nil {
			return st, err
		}
		parts = append(parts, "last="+info.LastGeneratedID)
	}
	st.Value = strings.Join(parts, "\x00")
	return st, nil
}

// RedisDiff compares two servers' keys: same key set, same type, same
// value, and TTLs within ttlSlack of each other (a key without TTL on one
// side must have none on the other). Where DUMP payloads differ but the
// logical values agree (one side chose another encoding, e.g. a listpack
// against a hashtable), the key counts as equal; dumpDiffers says how
// many such keys there were.
func RedisDiff(ctx context.Context, a, b *Redis, ttlSlack time.Duration) (diffs []string, keys, dumpDiffers int, err error) {
	ka, err := a.RedisKeys(ctx, "hamal:")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read %s: %w", a.Addr, err)
	}
	kb, err := b.RedisKeys(ctx, "hamal:")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read %s: %w", b.Addr, err)
	}
	for k, va := range ka {
		vb, ok := kb[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: missing on %s", k, b.Addr))
		case va.Type != vb.Type:
			diffs = append(diffs, fmt.Sprintf("%s: type %s vs %s", k, va.Type, vb.Type))
		case va.Dump != vb.Dump && va.Value != vb.Value:
			diffs = append(diffs, fmt.Sprintf("%s: value differs: %q vs %q", k, clip(va.Value), clip(vb.Value)))
		case (va.ExpireAt < 0) != (vb.ExpireAt < 0) || absDur(va.ExpireAt-vb.ExpireAt) > ttlSlack:
			diffs = append(diffs, fmt.Sprintf("%s: expire time %d vs %d", k, va.ExpireAt, vb.ExpireAt))
		default:
			if va.Dump != vb.Dump {
				dumpDiffers++
			}
		}
	}
	for k := range kb {
		if _, ok := ka[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only on %s", k, b.Addr))
		}
	}
	sort.Strings(diffs)
	return diffs, len(ka), dumpDiffers, nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
