package mysql

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// BenchmarkApply applies batches of one-row independent Txns (inserts into
// the sysbench-like table of FACTS.md) and reports rows/s, with one or
// several concurrent workers, and with the multi-site path on (site=b:
// origin marker and conflict check in every target transaction) beside the
// plain one, to price it; and with k a unique key (table tu, k = id), where
// a one-way unit also reads the rows its REPLACEs would remove for a unique
// value (collision.go), to price that.
func BenchmarkApply(b *testing.B) {
	createSchema(b, "bench", "CREATE TABLE %[1]s.t (id INT PRIMARY KEY, k INT, c VARCHAR(120), pad VARCHAR(60), KEY k (k))")
	mustExec(b, "CREATE TABLE bench.tu (id INT PRIMARY KEY, k INT, c VARCHAR(120), pad VARCHAR(60), UNIQUE KEY k (k))")
	plain := table("bench", "t", []string{"id", "k?", "c?", "pad?"}, []int{0})
	uniq := table("bench", "tu", []string{"id", "k?", "c?", "pad?"}, []int{0}, event.UniqueKey{Name: "k", Columns: []int{1}})
	c := "12345678901-12345678901-12345678901-12345678901-12345678901-12345678901-12345678901-12345678901-123456789"
	pad := "12345678901-12345678901-12345678901-12345678901-1234567"
	for _, bc := range []struct {
		batch, workers int
		site           string
		unique         bool
	}{{1, 1, "", false}, {1, 8, "", false}, {1, 8, "b", false}, {100, 1, "", false}, {100, 8, "", false}, {100, 8, "b", false},
		{1, 1, "", true}, {1, 8, "", true}, {100, 1, "", true}, {100, 8, "", true}} {
		name := fmt.Sprintf("batch=%d/workers=%d", bc.batch, bc.workers)
		if bc.site != "" {
			name += "/site=" + bc.site
		}
		tbl, mod := plain, int32(1000)
		if bc.unique {
			name += "/unique"
			tbl, mod = uniq, 1<<30
		}
		b.Run(name, func(b *testing.B) {
			mustExec(b, "TRUNCATE TABLE "+tbl.Namespace())
			s := openSink(b, Config{Workers: bc.workers, Channel: b.Name(), Site: bc.site})
			var path []string
			if bc.site != "" {
				path = []string{"a", bc.site}
			}
			var mu sync.Mutex
			next := 0
			take := func() []*event.Txn {
				mu.Lock()
				defer mu.Unlock()
				if next >= b.N {
					return nil
				}
				n := min(bc.batch, b.N-next)
				batch := make([]*event.Txn, n)
				for i := range batch {
					id := int32(next + i + 1)
					batch[i] = &event.Txn{Kind: event.KindDML, Pos: event.Position("bench"), Origin: "a", Path: path,
						Changes: []event.Change{ins(tbl, id, id%mod, c, pad)}}
				}
				next += n
				return batch
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range bc.workers {
				wg.Go(func() {
					for batch := take(); batch != nil; batch = take() {
						if err := s.Apply(context.Background(), batch); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
		})
	}
}
