package relay

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Two Relays on one dir: the second Open fails with a message naming the
// dir, the holder's pid and the fix, and touches nothing; after the first
// closes, the dir opens again and serves on from where it was.
func TestRelayDirLockRefusesSecondOpener(t *testing.T) {
	dir := t.TempDir()
	rdir := filepath.Join(dir, "relay")
	st := openStore(t, filepath.Join(dir, "cp"))
	defer st.Close()
	g := newGen(50)
	r := openRelay(t, rdir, st, g, nil)
	view, err := r.OpenSource(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := readN(t, view, 20)
	checkRange(t, got, 1, g.table)
	save(t, st, got[len(got)-1].Pos)
	view.Close()

	second, err := Open(Options{Channel: testChannel, Dir: rdir, Store: st, Open: newGen(50).open})
	if err == nil {
		second.Close()
		t.Fatal("a second Open of a relay dir in use succeeded")
	}
	var inUse *DirInUseError
	if !errorsAs(err, &inUse) || inUse.Dir != rdir || inUse.PID != os.Getpid() {
		t.Fatalf("second Open: got %#v (%v), want a DirInUseError for %s held by pid %d", err, err, rdir, os.Getpid())
	}
	for _, want := range []string{rdir, strconv.Itoa(os.Getpid()), "relay.dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The first relay is unharmed by the attempt.
	view, err = r.OpenSource(t.Context(), got[len(got)-1].Pos)
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, readN(t, view, 10), 21, g.table)
	view.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// Closed: the lock is released and the relay resumes at the checkpoint.
	r = openRelay(t, rdir, st, g, nil)
	defer r.Close()
	view, err = r.OpenSource(t.Context(), got[len(got)-1].Pos)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	checkRange(t, readN(t, view, 30), 21, g.table)
	if b, err := os.ReadFile(filepath.Join(rdir, lockName)); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q (%v), want this pid %d", b, err, os.Getpid())
	}
}
