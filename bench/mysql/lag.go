package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/hamal-replication/hamal/test/harness"
)

const (
	lagRate  = 2000 // txn/s
	lagConns = 8
)

// lag measures end-to-end lag under a steady load, for hamal and the
// native optimistic replica, on loopback and over the 30 ms link.
func (b *bench) lag() error {
	dur := time.Duration(float64(60*time.Second) * b.scale)
	dur = max(dur, 5*time.Second)
	i := 0
	for _, link := range []bool{false, true} {
		for _, c := range []string{hamal, nativeOpt} {
			i++
			where := "loopback"
			if link {
				where = "30 ms link"
			}
			progress("lag %s over %s for %s", c, where, dur)
			b.linkRTTs = b.linkRTTs[:0]
			res, err := b.lagOnce(fmt.Sprintf("lag%d", i), c, link, dur)
			if err != nil {
				return err
			}
			if res.behind != "" {
				b.add("lag @2,000 txn/s", where, c, fmtRate(res.rate), "", "fell behind: "+res.behind)
				continue
			}
			note := fmt.Sprintf("lag p50 %s, p99 %s, max %s", ms(res.p50), ms(res.p99), ms(res.max))
			if res.commitErr != nil {
				note += "; target's own commit not measured: " + res.commitErr.Error()
			} else {
				note += fmt.Sprintf("; target's own commit p50 %s, p99 %s, max %s", ms(res.commit[0]), ms(res.commit[1]), ms(res.commit[2]))
			}
			if c == hamal {
				note += fmt.Sprintf("; hamal_replication_lag_seconds p50 %s, p99 %s, max %s", ms(res.metric[0]), ms(res.metric[1]), ms(res.metric[2]))
			}
			if link {
				note += "; " + rttNote(b.linkRTTs)
			}
			b.add("lag @2,000 txn/s", where, c, fmtRate(res.rate), fmtRate(res.rate), note)
		}
	}
	return nil
}

func ms(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 1, 64) + " ms" }

type lagResult struct {
	rate          float64 // txn/s the source committed
	p50, p99, max time.Duration
	metric        [3]time.Duration // hamal's own lag metric: p50, p99, max
	// commit is the target's own commit latency over the same time
	// (p50, p99, max): a one-row INSERT committed directly on the target
	// every 10 ms. No replica can show less lag than its target takes to
	// commit, so this is the floor the disk sets.
	commit    [3]time.Duration
	commitErr error // why commit was not measured
	// behind says how far the replica was when the probe gave up, when
	// it could not keep up with the load.
	behind string
}

func (b *bench) lagOnce(table, contender string, link bool, dur time.Duration) (lagResult, error) {
	if err := b.src.Exec(createTable(table)); err != nil {
		return lagResult{}, err
	}
	start, err := b.src.GTIDPos()
	if err != nil {
		return lagResult{}, err
	}
	t, err := b.srv.target(table)
	if err != nil {
		return lagResult{}, err
	}
	defer b.srv.remove(t)
	upstream := t.Addr
	if contender != hamal {
		upstream = b.src.Addr
	}
	addr := upstream
	if link {
		l, err := b.proxies.NewLink("lag-"+table, upstream)
		if err != nil {
			return lagResult{}, err
		}
		defer l.Close()
		if _, err := l.Latency(15); err != nil {
			return lagResult{}, err
		}
		addr = l.Addr()
		if err := b.probeLink(addr); err != nil {
			return lagResult{}, err
		}
	}
	var h *hamalRun
	if contender == hamal {
		if h, err = startHamal(b.dir, b.src.Addr, addr, start); err != nil {
			return lagResult{}, err
		}
		defer h.stop()
	} else {
		if err := native(t, addr, start, "", 4); err != nil {
			return lagResult{}, err
		}
		defer stopNative(t)
	}
	// Let the replica connect before the clock starts.
	time.Sleep(time.Second)

	total := int(float64(lagRate) * dur.Seconds())
	committed := make([]time.Time, total+1)
	seen := make([]time.Time, total+1)
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	var metric []time.Duration
	var loadEnd atomic.Pointer[time.Time]
	var wg sync.WaitGroup
	probeErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		probeErr <- probe(ctx, t, table, seen, total, func() time.Time {
			if end := loadEnd.Load(); end != nil {
				return *end
			}
			return time.Now().Add(time.Hour)
		}, 60*time.Second)
	}()
	var commits []time.Duration
	var commitErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		commits, commitErr = commitProbe(ctx, t)
	}()
	if h != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				metric = append(metric, time.Duration(h.ch.Status().LagSeconds*float64(time.Second)))
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	t0 := time.Now()
	interval := time.Second / lagRate
	err = parallel(ctx, b.src, lagConns, total, func(c *client.Conn, _, i int) error {
		if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		_, err := c.Execute("INSERT INTO bench." + table + " VALUES (" + strconv.Itoa(i) + "," +
			strconv.FormatInt(time.Now().UnixMicro(), 10) + ",'load')")
		committed[i] = time.Now()
		return err
	})
	loadTime := time.Since(t0)
	end := time.Now()
	loadEnd.Store(&end)
	if err != nil {
		return lagResult{}, err
	}
	// The probe ends once it has seen every row.
	perr := <-probeErr
	cancel()
	wg.Wait()
	res := lagResult{rate: float64(total) / loadTime.Seconds()}
	var slow *behindError
	if errors.As(perr, &slow) {
		res.behind = fmt.Sprintf("%d of %d rows applied %s after the load ended", slow.seen, slow.total, slow.after.Round(time.Second))
		return res, nil
	}
	if perr != nil {
		return lagResult{}, fmt.Errorf("lag %s: %w", contender, perr)
	}
	lags := make([]time.Duration, 0, total)
	for i := 1; i <= total; i++ {
		lags = append(lags, max(0, seen[i].Sub(committed[i])))
	}
	res.p50, res.p99, res.max = percentiles(lags)
	if len(metric) > 0 {
		res.metric[0], res.metric[1], res.metric[2] = percentiles(metric)
	}
	switch {
	case commitErr != nil:
		res.commitErr = commitErr
	case len(commits) == 0:
		res.commitErr = errors.New("no commit finished")
	default:
		res.commit[0], res.commit[1], res.commit[2] = percentiles(commits)
	}
	return res, nil
}

// commitProbe commits a one-row INSERT on the target every 10 ms until ctx
// is done and returns each commit's latency. The rows go to their own
// table, binlogged like a replica's, so they pay the same fsyncs.
func commitProbe(ctx context.Context, t *harness.Server) ([]time.Duration, error) {
	c, err := t.Connect("")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Execute("CREATE TABLE IF NOT EXISTS bench.commit_probe (id INT PRIMARY KEY)"); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := 1; ctx.Err() == nil; i++ {
		start := time.Now()
		if _, err := c.Execute("INSERT INTO bench.commit_probe VALUES (" + strconv.Itoa(i) + ")"); err != nil {
			if ctx.Err() != nil {
				break
			}
			return out, err
		}
		out = append(out, time.Since(start))
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return out, nil
}

func percentiles(d []time.Duration) (p50, p99, top time.Duration) {
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return at(0.50), at(0.99), d[len(d)-1]
}

// probe polls the target for rows 1..total of table and records when each
// first appeared (the time the poll that saw it was sent).
func probe(ctx context.Context, t *harness.Server, table string, seen []time.Time, total int, loadEnd func() time.Time, grace time.Duration) error {
	c, err := t.Connect("")
	if err != nil {
		return err
	}
	defer c.Close()
	low := 1 // every row below low has been seen
	q := "SELECT id FROM bench." + table + " WHERE id >= "
	for low <= total {
		deadline := loadEnd().Add(grace)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			n := 0
			for _, t := range seen[1:] {
				if !t.IsZero() {
					n++
				}
			}
			return &behindError{seen: n, total: total, after: grace}
		}
		sent := time.Now()
		r, err := c.Execute(q + strconv.Itoa(low))
		if err != nil {
			return err
		}
		for i := range r.Values {
			id, _ := r.GetInt(i, 0)
			if id >= 1 && int(id) <= total && seen[id].IsZero() {
				seen[id] = sent
			}
		}
		r.Close()
		for low <= total && !seen[low].IsZero() {
			low++
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// behindError is the probe giving up: the replica did not apply every row
// within the grace period after the load ended.
type behindError struct {
	seen, total int
	after       time.Duration
}

func (e *behindError) Error() string {
	return fmt.Sprintf("probe saw %d of %d rows %s after the load ended", e.seen, e.total, e.after)
}
