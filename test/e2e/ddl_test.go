package e2e

import (
	"testing"
	"time"
)

// TestDDLMidStream replicates ADD COLUMN followed by rows using it, CREATE
// TABLE, DROP TABLE and RENAME TABLE, with a SIGKILL between them so some
// DDL is replayed after restart.
func TestDDLMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	src, dst := startPair(t)
	ch := newChannel(t, src, dst, channelOpts{workers: 4})
	p := ch.startRunning(t)

	src.MustExec(t,
		"INSERT INTO app.users (id, email, name) VALUES (1, 'a@x', 'before')",
		"ALTER TABLE app.users ADD COLUMN score INT NOT NULL DEFAULT 7",
		"INSERT INTO app.users (id, email, name, score) VALUES (2, 'b@x', 'after', 42)",
		"UPDATE app.users SET score = score + 1 WHERE id = 1",
		"CREATE TABLE app.extra (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO app.extra VALUES (1, 'one'), (2, 'two')",
	)
	waitTablesEqual(t, src, dst, map[string]string{"app.users": "id", "app.extra": "id"}, time.Minute)
	p.kill(t)

	src.MustExec(t,
		"CREATE TABLE app.gone (id INT PRIMARY KEY)",
		"INSERT INTO app.gone VALUES (1)",
		"DROP TABLE app.gone",
		"RENAME TABLE app.extra TO app.extra2",
		"INSERT INTO app.extra2 VALUES (3, 'three')",
		"ALTER TABLE app.extra2 ADD COLUMN w VARCHAR(5) DEFAULT 'x' AFTER id",
		"UPDATE app.extra2 SET w = 'y' WHERE id = 2",
	)
	ch.start(t)
	waitTablesEqual(t, src, dst, map[string]string{"app.users": "id", "app.extra2": "id"}, time.Minute)

	rows := dst.MustQuery(t, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='app' ORDER BY TABLE_NAME")
	var names []string
	for _, r := range rows {
		names = append(names, r[0])
	}
	want := []string{"extra2", "orders", "types", "users"}
	if len(names) != len(want) {
		t.Fatalf("target tables = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("target tables = %v, want %v", names, want)
		}
	}
	for _, table := range []string{"app.users", "app.extra2"} {
		a := src.MustQuery(t, "SHOW CREATE TABLE "+table)[0][1]
		b := dst.MustQuery(t, "SHOW CREATE TABLE "+table)[0][1]
		if a != b {
			t.Errorf("%s definition differs:\nsource: %s\ntarget: %s", table, a, b)
		}
	}
}
