package mysql

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/test/fakemysql"
)

// TestHeartbeatAndPreflightRefuseClearPassword: the heartbeat writer and
// the preflight connection, asked by the server to switch the login to
// mysql_clear_password over a plain link, refuse; the server receives no
// answer and never the password.
func TestHeartbeatAndPreflightRefuseClearPassword(t *testing.T) {
	const pw = "hb-Secr3t-pw"
	srv := fakemysql.Start(t, "mysql_native_password", nil, func(s *fakemysql.Session) error {
		if err := s.Switch("mysql_clear_password", nil); err != nil {
			return err
		}
		if _, err := s.Read(); err != nil {
			return err
		}
		return s.OK()
	})
	cfg := Config{Addr: srv.Addr, User: "hamal", Password: pw, ServerID: 4242}

	rep, err := Preflight(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) == 0 || !strings.Contains(rep.Problems[0].What, "mysql_clear_password") || rep.Version != "" {
		t.Errorf("preflight: version %q, problems %+v", rep.Version, rep.Problems)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = NewHeartbeatWriter(cfg, 100*time.Millisecond).Run(ctx) }()
	var sessions []*fakemysql.Session
	for len(sessions) < 2 { // the preflight's and at least one heartbeat's
		select {
		case s := <-srv.Ended():
			sessions = append(sessions, s)
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d sessions ended", len(sessions))
		}
	}
	cancel()
	<-done
	for i, s := range sessions {
		if len(s.Answers) != 0 {
			t.Errorf("session %d: the client answered the switch: %q", i, s.Answers)
		}
	}
	if bytes.Contains(srv.Wire(), []byte(pw)) {
		t.Error("the password crossed the network in clear")
	}
}
