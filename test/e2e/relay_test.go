package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
	"github.com/hamal-replication/hamal/test/workload"
)

// setRelay adds (or replaces) the relay block of a channel's config, and
// sets extra apply keys; the rest of the config stays as its helper wrote it.
func setRelay(t *testing.T, c *channel, maxBytes int64, applyExtra string) {
	t.Helper()
	data, err := os.ReadFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if i := strings.Index(text, "\nrelay:\n"); i >= 0 {
		text = text[:i+1]
	}
	if applyExtra != "" && !strings.Contains(text, applyExtra) {
		text = strings.Replace(text, "apply:\n", "apply:\n"+applyExtra, 1)
	}
	text += fmt.Sprintf("relay:\n  dir: %s\n  max_bytes: %d\n  fsync: batch\n", filepath.Join(c.dir, "relay"), maxBytes)
	if err := os.WriteFile(c.path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeLoad(t *testing.T, src *harness.Server, workers []int, n int, done *atomic.Int64) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(workers))
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- workload.Write(context.Background(), src.Addr, w, n, uint64(w)*7919, done)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
}

// TestRelayTargetDownKill9AndFull: with a relay, the target MariaDB is
// stopped under load; the source is still read into the relay to its last
// GTID, also across a SIGKILL of hamal in the middle of writing segments.
// Restarted with a max_bytes below what the relay holds, the reader blocks
// and the status says "relay full", while more is written to the source.
// When the target returns everything is applied and every table equals the
// source.
func TestRelayTargetDownKill9AndFull(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src, dst := startPair(t)
	ch := newChannel(t, src, dst, channelOpts{name: "relay-e2e", workers: 4})
	setRelay(t, ch, 256<<20, "")
	p := ch.startRunning(t)
	var done atomic.Int64

	// Running normally through the relay.
	writeLoad(t, src, []int{1}, 300, &done)
	waitTablesEqual(t, src, dst, workload.Tables, 2*time.Minute)

	// Target down under load; hamal SIGKILLed while the relay writes.
	if err := dst.Stop(); err != nil {
		t.Fatal(err)
	}
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); writeLoad(t, src, []int{2, 3}, 1500, &done) }()
	for done.Load() < 300+1000 {
		time.Sleep(20 * time.Millisecond)
	}
	p.kill(t)
	t.Logf("SIGKILL while the relay was being written, at %d source transactions", done.Load())
	p = ch.start(t)
	<-loadDone
	gtid, err := src.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	st := ch.waitState(t, 2*time.Minute, func(st pipeline.Status) bool {
		return st.Relay != nil && strings.Contains(st.Relay.ReadPosition, gtid)
	})
	t.Logf("target down: relay read to %s (seq %d), applied seq %d, holds %d txns in %d bytes",
		st.Relay.ReadPosition, st.Relay.ReadSeq, st.Relay.AppliedSeq, st.Relay.Txns, st.Relay.Bytes)
	if st.Relay.Txns < 1000 || st.Relay.Bytes <= 1<<20 {
		t.Fatalf("relay holds %d txns in %d bytes with the target down; want the source read into it", st.Relay.Txns, st.Relay.Bytes)
	}
	if b := ch.metric(t, "hamal_relay_bytes"); b != float64(st.Relay.Bytes) && b <= 1<<20 {
		t.Errorf("hamal_relay_bytes = %v, status says %d", b, st.Relay.Bytes)
	}
	if n := ch.metric(t, "hamal_relay_txns"); n < 1000 {
		t.Errorf("hamal_relay_txns = %v, want the transactions held", n)
	}
	out, code := hamalCmd(t, "status", "--addr", ch.adminAddr)
	for _, want := range []string{"relay read:", "relay applied:", fmt.Sprintf("seq %d at", st.Relay.ReadSeq)} {
		if !strings.Contains(out, want) {
			t.Errorf("hamal status (exit %d) does not show %q:\n%s", code, want, out)
		}
	}

	// Relay full: max_bytes below what the relay holds.
	p.kill(t)
	setRelay(t, ch, 1<<20, "")
	p = ch.start(t)
	opened := ch.waitState(t, time.Minute, func(st pipeline.Status) bool { return st.Relay != nil && st.Relay.State != "starting" })
	writeLoad(t, src, []int{4}, 200, &done)
	full := ch.waitState(t, time.Minute, func(st pipeline.Status) bool { return st.Relay.Full })
	if full.Relay.State != "relay full" || !strings.Contains(full.Relay.Reason, "max_bytes") || full.Relay.ReadSeq != opened.Relay.ReadSeq {
		t.Fatalf("relay full: state %q (%s), read seq %d → %d; want the reader blocked", full.Relay.State, full.Relay.Reason, opened.Relay.ReadSeq, full.Relay.ReadSeq)
	}
	out, _ = hamalCmd(t, "status", "--addr", ch.adminAddr)
	if !strings.Contains(out, "relay full") {
		t.Errorf("hamal status does not say relay full:\n%s", out)
	}
	if m := ch.metric(t, "hamal_relay_full"); m != 1 {
		t.Errorf("hamal_relay_full = %v, want 1", m)
	}

	// Target back: everything is applied, the relay drains and frees space.
	if err := dst.Restart(); err != nil {
		t.Fatal(err)
	}
	waitTablesEqual(t, src, dst, workload.Tables, 3*time.Minute)
	gtid, _ = src.GTIDPos()
	final := ch.waitState(t, time.Minute, func(st pipeline.Status) bool {
		return st.Relay != nil && st.Relay.Txns == 0 && !st.Relay.Full && strings.Contains(st.Relay.AppliedPosition, gtid)
	})
	if final.Relay.Bytes > final.Relay.MaxBytes {
		t.Errorf("after catching up the relay holds %d bytes, over max_bytes %d", final.Relay.Bytes, final.Relay.MaxBytes)
	}
	t.Logf("caught up: %d source transactions, relay applied seq %d, %d bytes in %d segments",
		done.Load(), final.Relay.AppliedSeq, final.Relay.Bytes, final.Relay.Segments)
}

// TestRelayRedisTargetPaused: with a relay and a small apply window, the
// target Redis refuses writes for a while (CLIENT PAUSE WRITE) under load;
// the relay keeps reading the master (no disconnect, no second full sync),
// holding far more than the window, and when the target takes writes again
// it converges to the source.
func TestRelayRedisTargetPaused(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src := harness.RedisServer(t, harness.RedisOptions{})
	dst := harness.RedisServer(t, harness.RedisOptions{})
	seedRedis(t, src, "", 500)
	ch := newRedisChannel(t, src, dst, redisChannelOpts{name: "redis-relay"})
	const window = 16
	setRelay(t, ch, 256<<20, fmt.Sprintf("  window_txns: %d\n", window))
	ch.startRunning(t)
	waitRedisEqual(t, src, dst, 60*time.Second)

	ctx := context.Background()
	if err := dst.Client().Do(ctx, "CLIENT", "PAUSE", "15000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	before, err := ch.status()
	if err != nil {
		t.Fatal(err)
	}
	redisWorkload(t, src, "r", 4000, rand.New(rand.NewPCG(5, 6)))
	offset := infoInt(t, src, "replication", "master_repl_offset")
	st := ch.waitState(t, time.Minute, func(st pipeline.Status) bool {
		return st.Relay != nil && st.Relay.Txns > 10*window && strings.Contains(st.Relay.ReadPosition, fmt.Sprintf(`"offset":%d`, offset))
	})
	if time.Since(pausedAt) > 14*time.Second {
		t.Skip("the machine is too slow to finish the workload while the target is paused; nothing shown")
	}
	t.Logf("target paused: relay read %d → %d to offset %d, holding %d txns (window %d), applied seq %d",
		before.Relay.ReadSeq, st.Relay.ReadSeq, offset, st.Relay.Txns, window, st.Relay.AppliedSeq)
	if !st.SourceConnected {
		t.Error("source disconnected while the target was paused")
	}
	waitRedisEqual(t, src, dst, 2*time.Minute)
	if full := infoInt(t, src, "stats", "sync_full"); full != 1 {
		t.Errorf("master did %d full syncs, want 1 (the relay keeps reading; no resync)", full)
	}
	if n := infoInt(t, src, "replication", "connected_slaves"); n != 1 {
		t.Errorf("master has %d replicas connected, want hamal's one", n)
	}
}
