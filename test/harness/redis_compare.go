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

// RedisKeys reads type, DUMP and expiry of every key of databases 0..15
// except those starting with skipPrefix ("hamal:"), keyed "db/key"; Value
// is left empty (see RedisValue). Reads are pipelined per SCAN page.
func (r *Redis) RedisKeys(ctx context.Context, skipPrefix string) (map[string]RedisKey, error) {
	out := map[string]RedisKey{}
	for db := 0; db < 16; db++ {
		c := r.ClientDB(db)
		err := func() error {
			defer c.Close()
			var cursor uint64
			for {
				keys, next, err := c.Scan(ctx, cursor, "*", 1000).Result()
				if err != nil {
					return err
				}
				p := c.Pipeline()
				types := make([]*redis.StatusCmd, len(keys))
				dumps := make([]*redis.StringCmd, len(keys))
				exps := make([]*redis.DurationCmd, len(keys))
				for i, k := range keys {
					types[i], dumps[i], exps[i] = p.Type(ctx, k), p.Dump(ctx, k), p.PExpireTime(ctx, k)
				}
				if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
					return err
				}
				for i, k := range keys {
					if skipPrefix != "" && strings.HasPrefix(k, skipPrefix) || types[i].Val() == "none" {
						continue
					}
					out[fmt.Sprintf("%d/%s", db, k)] = RedisKey{Type: types[i].Val(), Dump: dumps[i].Val(), ExpireAt: exps[i].Val()}
				}
				if next == 0 {
					return nil
				}
				cursor = next
			}
		}()
		if err != nil {
			return nil, fmt.Errorf("db %d: %w", db, err)
		}
	}
	return out, nil
}

// RedisValue reads one key's logical value ("db/key" as RedisKeys names
// it), canonical: sorted where order is not data.
func (r *Redis) RedisValue(ctx context.Context, dbKey string) (string, error) {
	dbs, k, _ := strings.Cut(dbKey, "/")
	var db int
	fmt.Sscan(dbs, &db)
	c := r.ClientDB(db)
	defer c.Close()
	st, err := readKey(ctx, c, k)
	return st.Value, err
}

// valueReader reads logical values over one client per database.
type valueReader struct {
	r       *Redis
	clients map[string]*redis.Client
}

func (v *valueReader) value(ctx context.Context, dbKey string) (string, error) {
	dbs, k, _ := strings.Cut(dbKey, "/")
	c := v.clients[dbs]
	if c == nil {
		var db int
		fmt.Sscan(dbs, &db)
		c = v.r.ClientDB(db)
		v.clients[dbs] = c
	}
	st, err := readKey(ctx, c, k)
	return st.Value, err
}

func (v *valueReader) close() {
	for _, c := range v.clients {
		c.Close()
	}
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
	readA, readB := &valueReader{r: a, clients: map[string]*redis.Client{}}, &valueReader{r: b, clients: map[string]*redis.Client{}}
	defer readA.close()
	defer readB.close()
	sameValue := func(key string) bool {
		va, errA := readA.value(ctx, key)
		vb, errB := readB.value(ctx, key)
		return errA == nil && errB == nil && va == vb
	}
	for k, va := range ka {
		vb, ok := kb[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: missing on %s", k, b.Addr))
		case va.Type != vb.Type:
			diffs = append(diffs, fmt.Sprintf("%s: type %s vs %s", k, va.Type, vb.Type))
		case va.Dump != vb.Dump && !sameValue(k):
			diffs = append(diffs, fmt.Sprintf("%s: value differs", k))
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

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
