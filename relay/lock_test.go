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

// A segment of another relay format, or a foreign file named like one, is
// refused with an error that says which and what to do, wherever it is in
// the dir; it is neither read nor truncated as torn.
func TestRelayRefusesForeignSegment(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"old format, last segment", map[string]string{segName(1): "HAMALRL0" + "\x05\x00\x00\x00garbage"},
			[]string{`relay format "0"`, `reads formats "1" and "2"`, "remove the relay dir"}},
		{"foreign file, last segment", map[string]string{segName(1): "hello, world"},
			[]string{"is not a relay segment", `"hello, w"`, "move it out"}},
		{"old format, before the last", map[string]string{segName(1): "HAMALRL0xxxx", segName(9): segMagic},
			[]string{`relay format "0"`, segName(1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			rdir := filepath.Join(dir, "relay")
			if err := os.MkdirAll(rdir, 0o750); err != nil {
				t.Fatal(err)
			}
			for name, body := range c.files {
				if err := os.WriteFile(filepath.Join(rdir, name), []byte(body), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			st := openStore(t, filepath.Join(dir, "cp"))
			defer st.Close()
			r, err := Open(Options{Channel: testChannel, Dir: rdir, Store: st, Open: newGen(5).open})
			if err == nil {
				r.Close()
				t.Fatal("Open accepted a relay dir with a foreign segment")
			}
			var ferr *FormatError
			if !errorsAs(err, &ferr) {
				t.Fatalf("got %v, want a FormatError", err)
			}
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			for name, body := range c.files {
				if b, err := os.ReadFile(filepath.Join(rdir, name)); err != nil || string(b) != body {
					t.Errorf("%s changed: %q, %v", name, b, err)
				}
			}
			// The refused Open released the dir lock.
			if f, err := lockDir(rdir); err != nil {
				t.Errorf("lock after a refused Open: %v", err)
			} else {
				unlockDir(f)
			}
		})
	}
}

// A segment cut while being created (shorter than, and a prefix of, the
// header) is torn, not foreign: it is removed and the relay starts.
func TestRelayRemovesSegmentCutInItsHeader(t *testing.T) {
	dir := t.TempDir()
	rdir := filepath.Join(dir, "relay")
	if err := os.MkdirAll(rdir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rdir, segName(1)), []byte(segMagic[:5]), 0o640); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, filepath.Join(dir, "cp"))
	defer st.Close()
	g := newGen(10)
	r := openRelay(t, rdir, st, g, nil)
	defer r.Close()
	view, err := r.OpenSource(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	checkRange(t, readN(t, view, 10), 1, g.table)
}
