package mysql

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/loopguard"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
)

// The marker round trip: what a sink with a site stamps, a source reading
// the target's binlog hands back as the Txn's path, for DML (a marker row in
// the same transaction) and DDL (a leading comment). Marker rows never show
// up as data.
func TestOriginMarkerRoundTrip(t *testing.T) {
	mustExec(t, "DROP DATABASE IF EXISTS mk", "CREATE DATABASE mk", "CREATE TABLE mk.t (id INT PRIMARY KEY, v INT)")
	gtid, err := server.GTIDPos()
	if err != nil {
		t.Fatal(err)
	}
	s := openSink(t, Config{Workers: 2, Site: "sh"})
	tbl := table("mk", "t", []string{"id", "v"}, []int{0})

	fromSZ := txn(ins(tbl, int32(1), int32(10)), ins(tbl, int32(2), int32(20)))
	fromSZ.Origin, fromSZ.Path = "sz", []string{"sz", "sh"}
	second := txn(ins(tbl, int32(3), int32(30)))
	second.Origin, second.Path = "sz", []string{"sz", "sh"}
	apply(t, s, fromSZ, second)

	relayed := txn(upd(tbl, row(int32(1), int32(10)), row(int32(1), int32(11))))
	relayed.Origin, relayed.Path = "bj", []string{"bj", "hub", "sh"}
	apply(t, s, relayed)

	alter := ddl("mk", "ALTER TABLE t ADD COLUMN w INT")
	alter.Origin, alter.Path = "sz", []string{"sz", "sh"}
	apply(t, s, alter)

	if got := rows(t, "SELECT origin, path, n FROM hamal.origin_marker WHERE channel='"+t.Name()+"' ORDER BY worker"); !strings.Contains(got, "bj,bj,hub,sh,") {
		t.Errorf("marker rows %q lack the relayed path", got)
	}

	t.Run("mixed paths in one batch go in one unit each", func(t *testing.T) {
		a := txn(ins(tbl, int32(7), int32(70)))
		a.Path = []string{"sz", "sh"}
		b := txn(ins(tbl, int32(8), int32(80)))
		b.Path = []string{"bj", "sh"}
		if err := s.Apply(context.Background(), []*event.Txn{a, b}); err != nil {
			t.Fatal(err)
		}
	})

	// Read the target's binlog back from before the writes.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := srcmysql.Open(ctx, srcmysql.Config{Addr: server.Addr, User: "root", ServerID: 4101, Start: gtid, Tables: []string{"mk.*"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	for len(got) < 5 {
		txn, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("read back: %v (so far %v)", err, got)
		}
		switch txn.Kind {
		case event.KindDML:
			for _, c := range txn.Changes {
				if c.Namespace != "mk.t" {
					t.Errorf("change of %s forwarded as data", c.Namespace)
				}
			}
			got = append(got, "dml:"+txn.Origin+":"+loopguard.FormatPath(txn.Path)+":"+strings.Repeat("r", len(txn.Changes)))
		case event.KindDDL:
			got = append(got, "ddl:"+loopguard.FormatPath(txn.Path))
		}
	}
	want := "dml:sz:sz,sh:rrr dml:bj:bj,hub,sh:r ddl:sz,sh dml:sz:sz,sh:r dml:bj:bj,sh:r"
	if strings.Join(got, " ") != want {
		t.Errorf("read back %q, want %q", strings.Join(got, " "), want)
	}
}
