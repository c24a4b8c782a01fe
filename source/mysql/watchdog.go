package mysql

import (
	"time"
)

// watch closes the dump when Next has waited readTimeout without
// receiving anything, not even a binlog heartbeat: the connection is
// silently dead (a peer gone without a FIN, a cut link), and Next then
// returns a transient error so the channel reconnects. It checks counters
// once a second instead of the reader arming a deadline per packet.
func (r *Reader) watch() {
	tick := time.NewTicker(min(time.Second, r.readTimeout/4))
	defer tick.Stop()
	var last uint64
	var since time.Time // when Next was first seen waiting with no event
	for {
		select {
		case <-r.closed:
			return
		case now := <-tick.C:
			n := r.received.Load()
			if n != last || !r.inNext.Load() {
				last, since = n, time.Time{}
				continue
			}
			if since.IsZero() {
				since = now
				continue
			}
			if now.Sub(since) >= r.readTimeout {
				r.stalled.Store(true)
				r.syncer.Close() // GetEvent returns; Next reports the stall
				return
			}
		}
	}
}
