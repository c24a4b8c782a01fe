package sink_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
)

// recorder is a Target that records the calls the protocol makes, to
// check their order and what an error does. It stands for the protocol's
// caller contract only; engines run the conformance suite (sinktest)
// against real servers.
type recorder struct {
	calls   []string
	failAt  string
	failErr error
	class   sink.Class
}

type recUnit struct {
	r    *recorder
	txns []*event.Txn
}

func (r *recorder) Begin(_ context.Context, txns []*event.Txn) (sink.Unit, error) {
	r.calls = append(r.calls, fmt.Sprintf("begin %d", len(txns)))
	if r.failAt == "begin" {
		return nil, r.failErr
	}
	return &recUnit{r: r, txns: txns}, nil
}

func (r *recorder) Class(error) sink.Class { return r.class }

func (u *recUnit) step(name string) error {
	u.r.calls = append(u.r.calls, name)
	if verb, _, _ := strings.Cut(name, " "); u.r.failAt == verb {
		return u.r.failErr
	}
	return nil
}

func (u *recUnit) Marker(_ context.Context, m sink.Marker) error {
	return u.step("marker " + m.Origin + " " + m.PathText())
}
func (u *recUnit) Write(context.Context) error      { return u.step("write") }
func (u *recUnit) ProveLease(context.Context) error { return u.step("prove") }
func (u *recUnit) Commit(context.Context) error     { return u.step("commit") }
func (u *recUnit) Abort()                           { u.r.calls = append(u.r.calls, "abort") }

func txn(origin string, path ...string) *event.Txn {
	return &event.Txn{Kind: event.KindDML, Origin: origin, Path: path, Changes: []event.Change{{Namespace: "a.b"}}}
}

func TestApplyOrder(t *testing.T) {
	r := &recorder{}
	batch := []*event.Txn{txn("sz", "sz"), {Kind: event.KindHeartbeat}, txn("sz", "sz"), txn("sh", "sh", "sz"), txn("sh", "sh", "sz")}
	if err := sink.Apply(context.Background(), r, batch); err != nil {
		t.Fatal(err)
	}
	want := []string{"begin 3", "marker sz sz", "write", "prove", "commit", "begin 2", "marker sh sh,sz", "write", "prove", "commit"}
	if !slices.Equal(r.calls, want) {
		t.Fatalf("calls %q, want %q", r.calls, want)
	}
}

func TestApplyErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name      string
		failAt    string
		err       error
		class     sink.Class
		transient bool
		calls     []string
	}{
		{"fatal write", "write", boom, sink.ClassFatal, false, []string{"begin 1", "marker sz sz", "write", "abort"}},
		{"transient commit", "commit", boom, sink.ClassTransient, true, []string{"begin 1", "marker sz sz", "write", "prove", "commit", "abort"}},
		{"conn lost begin", "begin", boom, sink.ClassConnLost, true, []string{"begin 1"}},
		{"lease held is fatal whatever the class", "prove", fmt.Errorf("x: %w", sink.ErrLeaseHeld), sink.ClassTransient, false,
			[]string{"begin 1", "marker sz sz", "write", "prove", "abort"}},
		{"marked transient", "marker", retry.Transient(boom), sink.ClassFatal, true, []string{"begin 1", "marker sz sz", "abort"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{failAt: tc.failAt, failErr: tc.err, class: tc.class}
			err := sink.Apply(context.Background(), r, []*event.Txn{txn("sz", "sz")})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v does not wrap %v", err, tc.err)
			}
			if retry.IsTransient(err) != tc.transient {
				t.Fatalf("transient %v, want %v: %v", retry.IsTransient(err), tc.transient, err)
			}
			if !slices.Equal(r.calls, tc.calls) {
				t.Fatalf("calls %q, want %q", r.calls, tc.calls)
			}
		})
	}
}

func TestMarkerOf(t *testing.T) {
	m, err := sink.MarkerOf([]*event.Txn{{Kind: event.KindHeartbeat}, txn("", "sh", "sz")})
	if err != nil || m.Origin != "sh" || m.PathText() != "sh,sz" {
		t.Fatalf("marker %+v, %v", m, err)
	}
	if _, err := sink.MarkerOf([]*event.Txn{txn("sz", "sz"), txn("sh", "sh")}); err == nil {
		t.Fatal("mixed paths accepted")
	}
}
