package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/hamal-replication/hamal/test/harness"
)

// createTable returns the DDL of a bench table. Every workload table has
// sysbench's shape; blobs and lag tables have their own.
func createTable(name string) string {
	switch {
	case name == "blobs":
		return "CREATE TABLE bench.blobs (id INT NOT NULL PRIMARY KEY, b LONGBLOB NOT NULL)"
	case strings.HasPrefix(name, "lag"):
		return "CREATE TABLE bench." + name + " (id BIGINT NOT NULL PRIMARY KEY, t BIGINT NOT NULL, pad VARCHAR(64) NOT NULL)"
	}
	return "CREATE TABLE bench." + name + ` (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0,
		c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))`
}

// digits renders groups of 11 digits joined by '-', sysbench's filler.
func digits(buf []byte, rng *rand.Rand, groups int) []byte {
	for g := range groups {
		if g > 0 {
			buf = append(buf, '-')
		}
		n := rng.Uint64()
		for range 11 {
			buf = append(buf, byte('0'+n%10))
			n /= 10
		}
	}
	return buf
}

// row is the deterministic initial content of row id.
func row(id int) (k int, c, pad string) {
	rng := rand.New(rand.NewPCG(uint64(id), 0x9e3779b97f4a7c15))
	var buf [200]byte
	c = string(digits(buf[:0], rng, 10))
	pad = string(digits(buf[:0], rng, 5))
	return rng.IntN(1 << 20), c, pad
}

func rowSQL(id int) string {
	k, c, pad := row(id)
	return "(" + strconv.Itoa(id) + "," + strconv.Itoa(k) + ",'" + c + "','" + pad + "')"
}

// writeTSV writes rows 1..n in LOAD DATA's default format.
func writeTSV(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for id := 1; id <= n; id++ {
		k, c, pad := row(id)
		w.WriteString(strconv.Itoa(id))
		w.WriteByte('\t')
		w.WriteString(strconv.Itoa(k))
		w.WriteByte('\t')
		w.WriteString(c)
		w.WriteByte('\t')
		w.WriteString(pad)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadData runs LOAD DATA LOCAL of a TSV file into bench.table, binlogged
// or not.
func loadData(srv *harness.Server, table, path string, logged bool) error {
	c, err := client.Connect(srv.Addr, "root", "", "", func(c *client.Conn) error {
		return c.SetCapability(mysql.CLIENT_LOCAL_FILES)
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if !logged {
		if _, err := c.Execute("SET sql_log_bin=0"); err != nil {
			return err
		}
	}
	_, err = c.ExecQueryRelayLocalInfile("LOAD DATA LOCAL INFILE 'rows.tsv' INTO TABLE bench."+table,
		func([]byte) (io.Reader, error) { return os.Open(path) })
	if err != nil {
		return fmt.Errorf("LOAD DATA LOCAL into bench.%s on %s: %w", table, srv.Addr, err)
	}
	return nil
}

// multiRowInsert inserts rows 1..n into bench.table, per rows in one
// statement and transaction, on one connection.
func multiRowInsert(srv *harness.Server, table string, n, per int) error {
	c, err := srv.Connect("")
	if err != nil {
		return err
	}
	defer c.Close()
	var b strings.Builder
	for lo := 1; lo <= n; lo += per {
		b.Reset()
		b.WriteString("INSERT INTO bench." + table + " VALUES ")
		for id := lo; id < lo+per && id <= n; id++ {
			if id > lo {
				b.WriteByte(',')
			}
			b.WriteString(rowSQL(id))
		}
		if _, err := c.Execute(b.String()); err != nil {
			return fmt.Errorf("multi-row insert into bench.%s: %w", table, err)
		}
	}
	return nil
}

// parallel runs n jobs over conns connections to srv; job gets the
// connection, its index and the job number.
func parallel(ctx context.Context, srv *harness.Server, conns, n int, job func(c *client.Conn, worker, i int) error) error {
	var next atomic.Int64
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := srv.Connect("")
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > n {
					return
				}
				if err := job(c, w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// writeW1 commits n single-row INSERT transactions (rows 1..n) into
// bench.table.
func writeW1(ctx context.Context, src *harness.Server, table string, n int) error {
	return parallel(ctx, src, 8, n, func(c *client.Conn, _, i int) error {
		_, err := c.Execute("INSERT INTO bench." + table + " VALUES " + rowSQL(i))
		return err
	})
}

// writeW2 commits n sysbench-style write transactions on bench.table of
// tableRows rows: update the indexed column, update a non-indexed column,
// delete a row and insert it again, each on a random id. With hot, half
// the transactions update one of 10 hot rows instead of a random one.
func writeW2(ctx context.Context, src *harness.Server, table string, n, tableRows int, hot bool) error {
	rngs := make([]*rand.Rand, 8)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(uint64(i), 42))
	}
	var version atomic.Int64
	t := "bench." + table
	return parallel(ctx, src, 8, n, func(c *client.Conn, w, _ int) error {
		rng := rngs[w]
		id := func() int { return 1 + rng.IntN(tableRows) }
		a, b, d := id(), id(), id()
		if hot && rng.IntN(2) == 0 {
			a = 1 + rng.IntN(10)
		}
		var buf [200]byte
		// A fresh value every time: an UPDATE that changes nothing is not
		// logged, and every transaction must change its rows.
		c2 := strconv.FormatInt(version.Add(1), 10) + "-" + string(digits(buf[:0], rng, 9))
		_, _, pad := row(d)
		stmts := []string{
			"BEGIN",
			"UPDATE " + t + " SET k=k+1 WHERE id=" + strconv.Itoa(a),
			"UPDATE " + t + " SET c='" + c2 + "' WHERE id=" + strconv.Itoa(b),
			"DELETE FROM " + t + " WHERE id=" + strconv.Itoa(d),
			"INSERT INTO " + t + " VALUES (" + strconv.Itoa(d) + "," + strconv.Itoa(rng.IntN(1<<20)) + ",'" + c2 + "','" + pad + "')",
			"COMMIT",
		}
		for attempt := 0; ; attempt++ {
			err := runTxn(c, stmts)
			if err == nil {
				return nil
			}
			var me *mysql.MyError
			if errors.As(err, &me) && (me.Code == 1213 || me.Code == 1205) && attempt < 20 {
				continue
			}
			return err
		}
	})
}

func runTxn(c *client.Conn, stmts []string) error {
	for _, q := range stmts {
		if _, err := c.Execute(q); err != nil {
			_, _ = c.Execute("ROLLBACK")
			return fmt.Errorf("%s: %w", truncate(q, 80), err)
		}
	}
	return nil
}

// writeBlobs commits n transactions of one row with a size-byte LONGBLOB.
func writeBlobs(ctx context.Context, src *harness.Server, n, size int) error {
	return parallel(ctx, src, 2, n, func(c *client.Conn, _, i int) error {
		_, err := c.Execute(fmt.Sprintf("INSERT INTO bench.blobs VALUES (%d, REPEAT(MD5(%d), %d))", i, i, size/32))
		return err
	})
}

// tableState is a table's row count and CHECKSUM TABLE value.
type tableState struct {
	Rows     int64
	Checksum string
}

func state(srv *harness.Server, table string) (tableState, error) {
	rows, err := srv.Query("SELECT COUNT(*) FROM bench." + table)
	if err != nil {
		return tableState{}, err
	}
	n, _ := strconv.ParseInt(rows[0][0], 10, 64)
	cs, err := srv.Query("CHECKSUM TABLE bench." + table)
	if err != nil {
		return tableState{}, err
	}
	return tableState{Rows: n, Checksum: cs[0][1]}, nil
}

// verify fails unless target's table equals want (the source's).
func verify(target *harness.Server, table string, want tableState, who string) error {
	got, err := state(target, table)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s: bench.%s on the target differs from the source: %d rows, checksum %s; source %d rows, checksum %s",
			who, table, got.Rows, got.Checksum, want.Rows, want.Checksum)
	}
	return nil
}
