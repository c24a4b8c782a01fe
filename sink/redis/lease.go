package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hamal-replication/hamal/redisrepl"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
)

// ErrLeaseHeld is sink.ErrLeaseHeld: another process holds the channel's
// lease keys on the target.
var ErrLeaseHeld = sink.ErrLeaseHeld

// Lease timing. A holder renews every leaseTTL/5; a successor of a holder
// whose connection is gone takes over at once, otherwise after leaseTTL.
const defaultLeaseTTL = 10 * time.Second

// LeaseKey returns the key holding a channel's fencing lease (with a TTL).
func LeaseKey(channel string) string { return redisrepl.MarkerPrefix + "lease:" + channel }

// ownerKey returns the key naming the lease's holder, without a TTL. It
// changes only when the lease changes hands, so applies WATCH it: a renewal
// (which rewrites LeaseKey) does not abort them.
func ownerKey(channel string) string { return redisrepl.MarkerPrefix + "lease-owner:" + channel }

// The scripts take KEYS = {lease, owner}. They do not replicate their
// writes (REPL_NONE): the lease concerns this target only, its replicas and
// a reverse channel reading its stream have no use for it, and a renewal
// every 2 s would keep the replication offset of an idle target moving. A
// replica promoted to target therefore has no lease; the sink takes it
// back as after a FLUSHALL.
//
// takeScript sets both keys to ARGV[2] with TTL ARGV[3] if the lease is
// free or still holds ARGV[1] (a holder found dead): 1, else 0 and the
// holder's value.
var takeScript = goredis.NewScript(`
redis.set_repl(redis.REPL_NONE)
local v = redis.call('GET', KEYS[1])
if not v or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('SET', KEYS[2], ARGV[2])
  return {1, ARGV[2]}
end
return {0, v}`)

// renewScript extends the lease while this process owns it (1), takes it
// back when both keys are gone (a FLUSHALL applied to the target, or an
// expiry while nobody else took it: 1), or reports it lost (0).
var renewScript = goredis.NewScript(`
redis.set_repl(redis.REPL_NONE)
local o = redis.call('GET', KEYS[2])
local v = redis.call('GET', KEYS[1])
if o == ARGV[1] or (not o and (not v or v == ARGV[1])) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if o ~= ARGV[1] then redis.call('SET', KEYS[2], ARGV[1]) end
  return 1
end
return 0`)

// releaseScript deletes both keys if this process owns the lease.
var releaseScript = goredis.NewScript(`
redis.set_repl(redis.REPL_NONE)
if redis.call('GET', KEYS[2]) == ARGV[1] then return redis.call('DEL', KEYS[1], KEYS[2]) end
return 0`)

// Lease states.
const (
	leaseHeld int32 = iota + 1
	leaseLost       // another process holds it: fatal
)

// lease is the Redis sink's fencing lease: the key hamal:lease:<channel>
// holding "<client id> <host> <pid> <nonce>", with a TTL, renewed by a
// dedicated connection whose CLIENT ID is in the value. Redis has no
// session locks, so two things stand in for GET_LOCK's "released when the
// session ends": a successor takes over at once when the holder's client
// id is no longer connected (a killed process's socket is closed by its
// kernel), and otherwise when the TTL runs out. Every apply WATCHes the key
// and checks it holds this value in the round trip that reads the fences,
// so a MULTI/EXEC never commits once the lease changed hands: that is what
// makes the fencing strict, not the renew interval.
type lease struct {
	key    string
	owner  string // ownerKey
	value  string
	ttl    time.Duration
	conn   *goredis.Conn   // renews; its CLIENT ID is in value
	client *goredis.Client // for applies' checks (conn is the renewer's)
	state  atomic.Int32
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// acquireLease takes the lease, waiting for a holder that is alive for at
// most one TTL, then failing with ErrLeaseHeld.
func acquireLease(ctx context.Context, client *goredis.Client, channel string, ttl time.Duration) (*lease, error) {
	conn := client.Conn()
	id, err := conn.ClientID(ctx).Result()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("lease: CLIENT ID: %w", err)
	}
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	host, _ := os.Hostname()
	l := &lease{key: LeaseKey(channel), owner: ownerKey(channel), ttl: ttl, conn: conn, client: client, stop: make(chan struct{}), done: make(chan struct{}),
		value: fmt.Sprintf("%d %s %d %s", id, host, os.Getpid(), hex.EncodeToString(nonce[:]))}
	deadline := time.Now().Add(ttl + time.Second)
	dead := ""
	for {
		taken, holder, err := l.take(ctx, dead)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("lease: take %s: %w", l.key, err)
		}
		if taken {
			break
		}
		if !holderConnected(ctx, conn, holder) {
			dead = holder // take it over, unless it changed meanwhile
			continue
		}
		if time.Now().After(deadline) {
			conn.Close()
			return nil, fmt.Errorf("%w: channel %q is applied by %s (key %s on the target); stop that process, or wait until it is gone and its lease expires",
				ErrLeaseHeld, channel, describeHolder(holder), l.key)
		}
		select {
		case <-ctx.Done():
			conn.Close()
			return nil, ctx.Err()
		case <-time.After(ttl / 20):
		}
	}
	l.state.Store(leaseHeld)
	go l.renew()
	return l, nil
}

// take runs takeScript: whether the lease is now this process's, and else
// who holds it.
func (l *lease) take(ctx context.Context, dead string) (bool, string, error) {
	res, err := takeScript.Run(ctx, l.conn, []string{l.key, l.owner}, dead, l.value, l.ttl.Milliseconds()).Slice()
	if err != nil {
		return false, "", err
	}
	if len(res) != 2 {
		return false, "", fmt.Errorf("unexpected reply %v", res)
	}
	n, _ := res[0].(int64)
	v, _ := res[1].(string)
	return n == 1, v, nil
}

// holderConnected reports whether the client id a lease value names is
// still connected to the target. When that cannot be told (an ACL without
// CLIENT LIST, a malformed value), the holder counts as alive: waiting for
// the TTL is the safe side.
func holderConnected(ctx context.Context, conn *goredis.Conn, holder string) bool {
	idText, _, _ := strings.Cut(holder, " ")
	if _, err := strconv.ParseUint(idText, 10, 64); err != nil {
		return true
	}
	list, err := conn.Do(ctx, "CLIENT", "LIST", "ID", idText).Text()
	if err != nil {
		return true
	}
	return strings.TrimSpace(list) != ""
}

// describeHolder renders a lease value for an error message.
func describeHolder(v string) string {
	f := strings.Fields(v)
	if len(f) < 3 {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("the hamal process %s on host %s (target client id %s)", f[2], f[1], f[0])
}

func (l *lease) renew() {
	defer close(l.done)
	sink.KeepLease(l.stop, l.ttl, func(ctx context.Context) (bool, error) {
		n, err := renewScript.Run(ctx, l.conn, []string{l.key, l.owner}, l.value, l.ttl.Milliseconds()).Int()
		return err == nil && n != 0, err
	}, func() { l.state.Store(leaseLost) })
}

// check interprets the owner value an apply read under WATCH: nil when
// this process holds the lease; a transient error when the keys are gone
// (a FLUSHALL applied to the target) and it took them back, so the apply
// starts again under a fresh WATCH; ErrLeaseHeld when another process has
// it.
func (l *lease) check(ctx context.Context, v string, missing bool) error {
	if l.state.Load() == leaseLost {
		return fmt.Errorf("%w: key %s on the target names another holder; this process stops applying", ErrLeaseHeld, l.owner)
	}
	if missing {
		n, err := renewScript.Run(ctx, l.client, []string{l.key, l.owner}, l.value, l.ttl.Milliseconds()).Int()
		if err != nil {
			return retry.Transient(fmt.Errorf("fencing lease %s is gone; taking it back: %w", l.key, err))
		}
		if n == 1 {
			return retry.Transient(fmt.Errorf("fencing lease %s was gone (FLUSHALL on the target?) and is taken back; retrying", l.key))
		}
		v, _ = l.client.Get(ctx, l.owner).Result()
	}
	if v != l.value {
		l.state.Store(leaseLost)
		return fmt.Errorf("%w: %s took key %s on the target; this process stops applying", ErrLeaseHeld, describeHolder(v), l.owner)
	}
	return nil
}

// release stops renewing and deletes the lease if still held.
func (l *lease) release() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = releaseScript.Run(ctx, l.conn, []string{l.key, l.owner}, l.value).Err()
		l.conn.Close()
	})
}
