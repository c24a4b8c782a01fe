// Package workload generates the mixed transactional workload that the
// end-to-end tests, the demo and the benchmarks write to a source: random
// multi-statement transactions over a composite-PK table, a table with a
// unique secondary key (including unique values moving between rows and
// primary-key changes) and a table with every column type.
package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// Schema is the mixed workload's tables: a composite primary key, a unique
// secondary key, and every column type the binlog reader must round-trip.
var Schema = []string{
	"CREATE DATABASE IF NOT EXISTS app",
	`CREATE TABLE app.orders (
		region SMALLINT NOT NULL, id INT NOT NULL, customer INT NOT NULL,
		amount DECIMAL(12,2) NOT NULL, note VARCHAR(64),
		PRIMARY KEY (region, id), KEY (id), KEY (customer))`,
	`CREATE TABLE app.users (
		id INT PRIMARY KEY, email VARCHAR(100) NOT NULL, name VARCHAR(100) CHARACTER SET utf8mb4,
		visits INT NOT NULL DEFAULT 0, UNIQUE KEY uk_email (email))`,
	`CREATE TABLE app.types (
		id INT PRIMARY KEY,
		ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
		mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
		de DECIMAL(30,10), f FLOAT, d DOUBLE,
		dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, y YEAR,
		c CHAR(10) CHARACTER SET utf8mb4, vc VARCHAR(100) CHARACTER SET utf8mb4,
		bn BINARY(4), vb VARBINARY(50), bl BLOB, tx TEXT CHARACTER SET utf8mb4, j JSON,
		e ENUM('a','b','c'), st SET('x','y','z'), bt BIT(10))`,
}

// Tables names each workload table with its ORDER BY for checksums.
var Tables = map[string]string{
	"app.orders": "region, id",
	"app.users":  "id",
	"app.types":  "id",
}

// Generator produces random transactions for one writer connection. Each
// writer owns a disjoint id space, so writers never wait on each other's
// rows except through unique keys.
type Generator struct {
	rng    *rand.Rand
	worker int // each worker owns a disjoint id space for inserts
	next   int
	users  int // user ids this worker created: worker*1e6 .. +users
	moves  int
}

// New returns a generator for writer number worker (1-based).
func New(worker int, seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, uint64(worker))), worker: worker}
}

func (w *Generator) id() int { return w.worker*1_000_000 + w.rng.IntN(w.next+1) }

func (w *Generator) newID() int { w.next++; return w.worker*1_000_000 + w.next }

// Txn returns the statements of one random transaction.
func (w *Generator) Txn() []string {
	n := 1 + w.rng.IntN(4)
	stmts := make([]string, 0, n+2)
	for range n {
		switch r := w.rng.IntN(100); {
		case r < 25:
			id := w.newID()
			stmts = append(stmts, fmt.Sprintf("INSERT INTO app.orders VALUES (%d, %d, %d, %d.%02d, %s)",
				w.rng.IntN(4), id, w.rng.IntN(500), w.rng.IntN(100000), w.rng.IntN(100), w.text()))
		case r < 35:
			stmts = append(stmts, fmt.Sprintf("UPDATE app.orders SET amount = amount + 1, note = %s WHERE id = %d",
				w.text(), w.id()))
		case r < 40: // primary key change
			stmts = append(stmts, fmt.Sprintf("UPDATE app.orders SET region = (region + 1) %% 4 WHERE id = %d", w.id()))
		case r < 44:
			stmts = append(stmts, fmt.Sprintf("DELETE FROM app.orders WHERE id = %d", w.id()))
		case r < 60:
			w.users++
			uid := w.worker*1_000_000 + w.users
			stmts = append(stmts, fmt.Sprintf("INSERT INTO app.users (id, email, name) VALUES (%d, 'u%d@x', %s)", uid, uid, w.text()))
		case r < 68: // a unique value moves from row a to row b
			if w.users < 2 {
				continue
			}
			a := w.worker*1_000_000 + 1 + w.rng.IntN(w.users)
			b := w.worker*1_000_000 + 1 + w.rng.IntN(w.users)
			if a == b {
				continue
			}
			w.moves++
			stmts = append(stmts,
				fmt.Sprintf("SET @e = (SELECT email FROM app.users WHERE id = %d)", a),
				fmt.Sprintf("UPDATE app.users SET email = 'm%d-%d@x' WHERE id = %d", w.worker, w.moves, a),
				fmt.Sprintf("UPDATE app.users SET email = @e WHERE id = %d AND @e IS NOT NULL", b))
		case r < 75:
			stmts = append(stmts, fmt.Sprintf("UPDATE app.users SET visits = visits + 1 WHERE id = %d",
				w.worker*1_000_000+1+w.rng.IntN(w.users+1)))
		case r < 78:
			stmts = append(stmts, fmt.Sprintf("DELETE FROM app.users WHERE id = %d", w.worker*1_000_000+1+w.rng.IntN(w.users+1)))
		case r < 93:
			stmts = append(stmts, "REPLACE INTO app.types VALUES ("+w.typesRow(w.worker*1_000_000+w.rng.IntN(300))+")")
		default:
			stmts = append(stmts, fmt.Sprintf("DELETE FROM app.types WHERE id = %d", w.worker*1_000_000+w.rng.IntN(300)))
		}
	}
	return stmts
}

var texts = []string{"plain", "emoji 😀🚀", "quote ' and \\\\ backslash", "tab\tnew\nline", "ünïcödé", "", "trailing  "}

func (w *Generator) text() string {
	if w.rng.IntN(10) == 0 {
		return "NULL"
	}
	return "'" + strings.ReplaceAll(texts[w.rng.IntN(len(texts))], "'", "''") + "'"
}

// typesRow renders one row of app.types with random, often extreme, values.
func (w *Generator) typesRow(id int) string {
	r := w.rng
	pick := func(vals ...string) string {
		if r.IntN(12) == 0 {
			return "NULL"
		}
		return vals[r.IntN(len(vals))]
	}
	cols := []string{
		fmt.Sprint(id),
		pick("-128", "127", "0", fmt.Sprint(r.IntN(256)-128)),
		pick("0", "255", fmt.Sprint(r.IntN(256))),
		pick("-32768", "32767", fmt.Sprint(r.IntN(65536)-32768)),
		pick("0", "65535", fmt.Sprint(r.IntN(65536))),
		pick("-8388608", "8388607", fmt.Sprint(r.IntN(1<<24)-(1<<23))),
		pick("0", "16777215", fmt.Sprint(r.IntN(1<<24))),
		pick("-2147483648", "2147483647", fmt.Sprint(r.Int32())),
		pick("0", "4294967295", fmt.Sprint(r.Uint32())),
		pick("-9223372036854775808", "9223372036854775807", fmt.Sprint(r.Int64()-r.Int64())),
		pick("0", "18446744073709551615", fmt.Sprint(r.Uint64())),
		pick("-12345678901234567890.0123456789", "0.0000000001", fmt.Sprintf("%d.%010d", r.IntN(1e9)-5e8, r.IntN(1e9))),
		pick("3.4e38", "-1.17549435e-38", "0", fmt.Sprint(r.Float32()*1e6)),
		pick("1.7976931348623157e308", "-2.2250738585072014e-308", "0.1", fmt.Sprint(r.NormFloat64()*1e12)),
		pick("'1000-01-01'", "'9999-12-31'", fmt.Sprintf("'20%02d-%02d-%02d'", r.IntN(100), 1+r.IntN(12), 1+r.IntN(28))),
		pick("'-838:59:59.000000'", "'838:59:59.999999'", fmt.Sprintf("'-%d:%02d:%02d.%06d'", r.IntN(800), r.IntN(60), r.IntN(60), r.IntN(1e6))),
		pick("'1000-01-01 00:00:00.000000'", "'9999-12-31 23:59:59.999999'", fmt.Sprintf("'2024-%02d-%02d %02d:%02d:%02d.%06d'", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6))),
		// TIMESTAMP extremes that are in range in every session time zone
		// (the client's, which the settings matrix varies: +08:00 too).
		pick("'1970-01-02 00:00:01.000000'", "'2038-01-18 03:14:07.999999'", fmt.Sprintf("'2024-%02d-%02d %02d:%02d:%02d.%06d'", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6))),
		pick("1901", "2155", "2024"),
		pick("'ab'", "'😀'", "''", "'x y'"),
		pick(w.text()),
		pick("X'00FF2700'", "X'5C000000'", "X'DEADBEEF'"),
		pick("X''", "X'00'", "X'FF00FF275C22'", fmt.Sprintf("X'%016X'", r.Uint64())),
		pick("X'00FFAA'", "REPEAT('b', 3000)", "''"),
		pick(w.text(), "REPEAT('ü', 500)"),
		pick(`'{"a": 1, "b": [true, null, "😀"]}'`, `'[]'`, `'"str"'`, `'{"nested": {"k": 1.5e10}}'`),
		pick("'a'", "'b'", "'c'"),
		pick("''", "'x'", "'x,z'", "'x,y,z'"),
		pick("b'0'", "b'1111111111'", "b'1010101010'", fmt.Sprint(r.IntN(1024))),
	}
	return strings.Join(cols, ",")
}

// Run runs one transaction's statements on conn.
func Run(conn *client.Conn, stmts []string) error {
	if len(stmts) == 0 {
		return nil
	}
	if _, err := conn.Execute("BEGIN"); err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := conn.Execute(s); err != nil {
			_, _ = conn.Execute("ROLLBACK")
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	_, err := conn.Execute("COMMIT")
	return err
}

// Write runs n random transactions from writer number worker against addr
// (user root, no password), retrying deadlocks and lock wait timeouts, and
// counts each committed transaction in done.
func Write(ctx context.Context, addr string, worker, n int, seed uint64, done *atomic.Int64) error {
	conn, err := client.Connect(addr, "root", "", "")
	if err != nil {
		return err
	}
	defer conn.Close()
	g := New(worker, seed)
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		stmts := g.Txn()
		for attempt := 0; ; attempt++ {
			err := Run(conn, stmts)
			if err == nil {
				break
			}
			var me *mysql.MyError
			if errors.As(err, &me) && (me.Code == 1213 || me.Code == 1205) && attempt < 5 {
				continue
			}
			return err
		}
		if done != nil {
			done.Add(1)
		}
	}
	return nil
}
