package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/test/harness"
)

// lockedBuffer is a log sink safe for the reader's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBadStartPositions: a start position the source cannot serve is a
// failed check (CheckStart, what hamal check runs) and a fatal error of
// Open or Next that names the real cause and its fix, for the GTID ahead
// of the source, the purged GTID, the GTID of a domain the source lacks,
// a file:pos beyond the end and one in a purged file; the checkpoint case
// (resume) names the checkpoint. No "kill connection" error is logged on
// the way. Good positions pass.
func TestBadStartPositions(t *testing.T) {
	srv := harness.MariaDB(t, harness.Options{ServerID: 7})
	srv.MustExec(t, "CREATE DATABASE s", "CREATE TABLE s.t (id INT PRIMARY KEY)", "INSERT INTO s.t VALUES (1)")
	purgedPos, err := srv.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	srv.MustExec(t, "INSERT INTO s.t VALUES (2)", "FLUSH BINARY LOGS", "INSERT INTO s.t VALUES (3)", "FLUSH BINARY LOGS")
	logs := srv.MustQuery(t, "SHOW BINARY LOGS")
	srv.MustExec(t, "PURGE BINARY LOGS TO '"+logs[len(logs)-1][0]+"'")
	srv.MustExec(t, "INSERT INTO s.t VALUES (4)")
	cur, err := srv.GTIDPos() // 7-7-N
	if err != nil {
		t.Fatal(err)
	}
	logs = srv.MustQuery(t, "SHOW BINARY LOGS")
	newest := logs[len(logs)-1]
	seq := gtidSeqOf(t, cur)

	cases := []struct {
		name     string
		start    string
		resume   event.Position
		sentinel error
		want     []string // in the error and in the check's problem
	}{
		{"gtid ahead", fmt.Sprintf("7-7-%d", seq+100), nil, ErrPositionAhead,
			[]string{"is ahead of the source", fmt.Sprintf("newest transaction in domain 7 is %s", cur), "take the position from this source"}},
		{"gtid purged", purgedPos, nil, ErrPositionPurged,
			[]string{"purged", "oldest binlog " + logs[0][0], "set source.start to snapshot"}},
		{"gtid unknown domain", fmt.Sprintf("55-5-%d", seq), nil, ErrPositionAhead,
			[]string{"GTID domain 55, which the source does not have", "domain 7 at " + cur}},
		{"file:pos beyond the end", newest[0] + ":99999999", nil, ErrPositionAhead,
			[]string{"beyond the end of " + newest[0], "it ends at " + newest[0] + ":" + newest[1]}},
		{"file:pos purged", strings.TrimSuffix(logs[0][0], logs[0][0][len(logs[0][0])-6:]) + "000001:4", nil, ErrPositionPurged,
			[]string{"in a binlog the source purged", "its oldest is " + logs[0][0]}},
		{"checkpoint ahead", "", EncodePosition(Position{GTID: fmt.Sprintf("7-7-%d", seq+5)}), ErrPositionAhead,
			[]string{"the checkpoint 7-7-", "is ahead of the source"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logBuf lockedBuffer
			cfg := baseConfig(t, srv)
			cfg.Start = c.start
			cfg.Logger = slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if c.resume == nil {
				problems, err := CheckStart(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if len(problems) != 1 {
					t.Fatalf("CheckStart: %d problems %v, want 1", len(problems), problems)
				}
				for _, w := range c.want {
					if !strings.Contains(problems[0].What+" fix: "+problems[0].Fix, w) {
						t.Errorf("check problem %+v lacks %q", problems[0], w)
					}
				}
			}
			r, err := Open(ctx, cfg, c.resume)
			if err == nil {
				defer r.Close()
				for err == nil {
					_, err = r.Next(ctx)
				}
				r.Close()
			}
			if !errors.Is(err, c.sentinel) || retry.IsTransient(err) {
				t.Fatalf("got %v (transient %v), want the fatal %v", err, retry.IsTransient(err), c.sentinel)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(logBuf.String(), "kill connection") {
				t.Errorf("log has a kill connection error:\n%s", logBuf.String())
			}
		})
	}
	for _, good := range []string{cur, newest[0] + ":4", "current", "earliest", "snapshot"} {
		cfg := baseConfig(t, srv)
		cfg.Start = good
		problems, err := CheckStart(context.Background(), cfg)
		if err != nil || len(problems) != 0 {
			t.Errorf("CheckStart(%q) = %v, %v; want no problem", good, problems, err)
		}
	}
}

func gtidSeqOf(t *testing.T, gtid string) uint64 {
	t.Helper()
	var d, s, n uint64
	if _, err := fmt.Sscanf(gtid, "%d-%d-%d", &d, &s, &n); err != nil {
		t.Fatalf("GTID position %q: %v", gtid, err)
	}
	return n
}
