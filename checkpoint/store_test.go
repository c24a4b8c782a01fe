package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
)

func openTestStore(t *testing.T, dir string) *Store {
	t.Helper()
	store, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	return store
}

func checkpointsEqual(a, b Checkpoint) bool {
	return a.Seq == b.Seq && string(a.Pos) == string(b.Pos) &&
		a.CommitTime.Equal(b.CommitTime) && a.SavedAt.Equal(b.SavedAt)
}

func TestStoreSaveLoad(t *testing.T) {
	commit := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	saved := time.Date(2025, 3, 4, 5, 6, 8, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		name    string
		channel string
		saves   []Checkpoint // saved in order; the last one must load
	}{
		{
			name:    "gtid position",
			channel: "db1-to-db2",
			saves: []Checkpoint{{
				Seq: 7, Pos: event.Position("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77"),
				CommitTime: commit, SavedAt: saved,
			}},
		},
		{
			name:    "binary position",
			channel: "mongo",
			saves: []Checkpoint{{
				Seq: 1, Pos: event.Position{0x82, 0x00, 0xff, 0xfe, '\n'},
				CommitTime: commit, SavedAt: saved,
			}},
		},
		{
			name:    "overwrite",
			channel: "redis",
			saves: []Checkpoint{
				{Seq: 1, Pos: event.Position("replid:100"), CommitTime: commit, SavedAt: saved},
				{Seq: 2, Pos: event.Position("replid:200"), CommitTime: commit.Add(time.Second), SavedAt: saved.Add(time.Second)},
			},
		},
		{
			name:    "zero times and empty position",
			channel: "empty",
			saves:   []Checkpoint{{Seq: 0}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := openTestStore(t, t.TempDir())
			if _, ok, err := store.Load(tc.channel); err != nil || ok {
				t.Fatalf("Load before Save = ok %v, err %v; want nothing", ok, err)
			}
			for _, c := range tc.saves {
				if err := store.Save(tc.channel, c); err != nil {
					t.Fatal(err)
				}
			}
			want := tc.saves[len(tc.saves)-1]
			got, ok, err := store.Load(tc.channel)
			if err != nil || !ok {
				t.Fatalf("Load = ok %v, err %v", ok, err)
			}
			if !checkpointsEqual(got, want) {
				t.Errorf("Load = %+v, want %+v", got, want)
			}
			if _, ok, _ := store.Load(tc.channel + "-other"); ok {
				t.Errorf("another channel sees the checkpoint")
			}
		})
	}
}

// TestStoreReadableEncoding checks that a checkpoint is stored as JSON that
// shows a text position as text.
func TestStoreReadableEncoding(t *testing.T) {
	store := openTestStore(t, t.TempDir())
	if err := store.Save("c", Checkpoint{Seq: 3, Pos: event.Position("mysql-bin.000003:4")}); err != nil {
		t.Fatal(err)
	}
	raw, ok, err := store.Get("checkpoint/c")
	if err != nil || !ok {
		t.Fatalf("Get = ok %v, err %v", ok, err)
	}
	for _, want := range []string{`"seq":3`, `"pos_text":"mysql-bin.000003:4"`, `"version":1`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("stored %s, want it to contain %s", raw, want)
		}
	}
}

func TestStoreReopen(t *testing.T) {
	dir := t.TempDir()
	want := Checkpoint{Seq: 9, Pos: event.Position("pos-9"), CommitTime: time.Unix(1700000000, 0).UTC()}
	first, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Save("ch", want); err != nil {
		t.Fatal(err)
	}
	if err := first.Set("schema/ch/t1", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := first.Set("k", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Set after Close = %v, want ErrClosed", err)
	}

	second := openTestStore(t, dir)
	got, ok, err := second.Load("ch")
	if err != nil || !ok || !checkpointsEqual(got, want) {
		t.Errorf("Load after reopen = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	value, ok, err := second.Get("schema/ch/t1")
	if err != nil || !ok || string(value) != "v1" {
		t.Errorf("Get after reopen = %q, %v, %v; want v1", value, ok, err)
	}
}

func TestStoreGetSetDelete(t *testing.T) {
	store := openTestStore(t, t.TempDir())
	if _, ok, err := store.Get("missing"); ok || err != nil {
		t.Errorf("Get(missing) = ok %v, err %v", ok, err)
	}
	if err := store.Set("a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := store.Set("a", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if value, ok, err := store.Get("a"); string(value) != "2" || !ok || err != nil {
		t.Errorf("Get(a) = %q, %v, %v; want 2", value, ok, err)
	}
	if err := store.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete("a"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if _, ok, err := store.Get("a"); ok || err != nil {
		t.Errorf("Get after Delete = ok %v, err %v", ok, err)
	}
}

func TestStoreScan(t *testing.T) {
	store := openTestStore(t, t.TempDir())
	keys := []string{
		"checkpoint/a", "checkpoint/b",
		"schema/a/t1", "schema/a/t2", "schema/ab/t1", "schema/b/t1",
		"migration/p1/state",
		"z\xff\xff", "\xff\xff",
	}
	for _, key := range keys {
		if err := store.Set(key, []byte("v:"+key)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{prefix: "schema/a/", want: []string{"schema/a/t1", "schema/a/t2"}},
		{prefix: "schema/a", want: []string{"schema/a/t1", "schema/a/t2", "schema/ab/t1"}},
		{prefix: "checkpoint/", want: []string{"checkpoint/a", "checkpoint/b"}},
		{prefix: "nothing/", want: nil},
		{prefix: "\xff", want: []string{"\xff\xff"}},
		{prefix: "z\xff", want: []string{"z\xff\xff"}},
		{prefix: "", want: []string{
			"checkpoint/a", "checkpoint/b", "migration/p1/state",
			"schema/a/t1", "schema/a/t2", "schema/ab/t1", "schema/b/t1",
			"z\xff\xff", "\xff\xff",
		}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.prefix), func(t *testing.T) {
			var got []string
			err := store.Scan(tc.prefix, func(key string, value []byte) error {
				if string(value) != "v:"+key {
					t.Errorf("value of %q = %q", key, value)
				}
				got = append(got, key)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("Scan(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		})
	}

	t.Run("stops at error", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := store.Scan("schema/", func(string, []byte) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("Scan = %v after %d calls; want stop after 1", err, calls)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		// dir returns the directory to open, or skips the case.
		dir     func(t *testing.T) string
		wantMsg []string
		wantErr error
	}{
		{
			name: "under a regular file",
			dir: func(t *testing.T) string {
				file := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(file, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(file, "store")
			},
			wantMsg: []string{"not a directory"},
		},
		{
			name: "read-only directory",
			dir: func(t *testing.T) string {
				dir := filepath.Join(t.TempDir(), "ro")
				if err := os.Mkdir(dir, 0o500); err != nil {
					t.Fatal(err)
				}
				// root ignores the mode bits.
				if probe, err := os.Create(filepath.Join(dir, "probe")); err == nil {
					probe.Close()
					t.Skip("directory permissions do not apply (running as root)")
				}
				return dir
			},
			wantMsg: []string{"permission denied"},
		},
		{
			name: "held by another store",
			dir: func(t *testing.T) string {
				dir := t.TempDir()
				openTestStore(t, dir)
				return dir
			},
			wantMsg: []string{"another process", "LOCK"},
			wantErr: ErrLocked,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			store, err := Open(dir)
			if err == nil {
				store.Close()
				t.Fatalf("Open(%q) succeeded", dir)
			}
			msg := err.Error()
			t.Logf("Open error: %s", msg)
			for _, want := range append([]string{dir}, tc.wantMsg...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v is not %v", err, tc.wantErr)
			}
		})
	}
}

// TestOpenLockedByOtherProcess holds the store open in a child process and
// checks that Open here names the lock.
func TestOpenLockedByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	child, lines := startCrashChild(t, dir, "hold")
	defer func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	}()
	if line, ok := <-lines; !ok || line != "open" {
		t.Fatalf("child said %q, %v; want open", line, ok)
	}
	store, err := Open(dir)
	if err == nil {
		store.Close()
		t.Fatal("Open succeeded while another process holds the store")
	}
	t.Logf("Open error: %v", err)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(err.Error(), "another process") {
		t.Errorf("Open error = %v; want ErrLocked naming %q", err, dir)
	}
}

// crashChildEnv names the store directory for the child process of
// TestCrashSafety; crashModeEnv says what the child does.
const (
	crashChildEnv = "HAMAL_CHECKPOINT_TEST_CHILD_DIR"
	crashModeEnv  = "HAMAL_CHECKPOINT_TEST_CHILD_MODE"
	crashChannel  = "crash"
)

func crashPos(seq uint64) event.Position { return event.Position(fmt.Sprintf("pos-%d", seq)) }

// runCrashChild is the child process: it opens the store in dir, prints
// "open", and then either holds it ("hold") or saves checkpoints 1, 2, 3, …
// printing each seq after its Save returned ("save"), until it is killed.
func runCrashChild(dir string) int {
	store, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("open")
	if os.Getenv(crashModeEnv) == "hold" {
		select {}
	}
	for seq := uint64(1); ; seq++ {
		c := Checkpoint{Seq: seq, Pos: crashPos(seq), CommitTime: time.Unix(int64(seq), 0), SavedAt: time.Now()}
		if err := store.Save(crashChannel, c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// One write of less than PIPE_BUF bytes: the parent sees whole lines.
		fmt.Println(seq)
	}
}

// startCrashChild re-executes the test binary as a child running
// runCrashChild, and returns the lines it prints.
func startCrashChild(t *testing.T, dir, mode string) (*exec.Cmd, <-chan string) {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), crashChildEnv+"="+dir, crashModeEnv+"="+mode)
	child.Stderr = os.Stderr
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
	}()
	return child, lines
}

// TestCrashSafety kills a child process that saves checkpoints in a loop
// (kill -9, at a random instant) and checks that the store holds the last
// checkpoint whose Save returned, or the one being saved.
func TestCrashSafety(t *testing.T) {
	tests := []struct {
		name      string
		killAfter uint64 // kill once the child printed this seq
	}{
		{name: "early", killAfter: 1},
		{name: "after 50", killAfter: 50},
		{name: "after 300", killAfter: 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			child, lines := startCrashChild(t, dir, "save")
			if line, ok := <-lines; !ok || line != "open" {
				_ = child.Process.Kill()
				_ = child.Wait()
				t.Fatalf("child said %q, %v; want open", line, ok)
			}
			var lastPrinted uint64
			killed := false
			for line := range lines {
				seq, err := strconv.ParseUint(line, 10, 64)
				if err != nil || seq != lastPrinted+1 {
					t.Errorf("child printed %q after %d", line, lastPrinted)
					break
				}
				lastPrinted = seq
				if !killed && seq >= tc.killAfter {
					if err := child.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					killed = true
					// Keep reading: lines printed before the kill are still in the pipe.
				}
			}
			err := child.Wait()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want killed by SIGKILL", err)
			}

			store := openTestStore(t, dir)
			got, ok, err := store.Load(crashChannel)
			if err != nil || !ok {
				t.Fatalf("Load after crash = ok %v, err %v", ok, err)
			}
			if got.Seq < lastPrinted || got.Seq > lastPrinted+1 {
				t.Errorf("loaded seq %d; last returned Save was %d", got.Seq, lastPrinted)
			}
			if string(got.Pos) != string(crashPos(got.Seq)) || !got.CommitTime.Equal(time.Unix(int64(got.Seq), 0)) {
				t.Errorf("loaded %+v, which the child never saved", got)
			}
		})
	}
}
