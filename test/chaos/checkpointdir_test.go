package chaos

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/pipeline"
)

// ext4IOCShutdown is EXT4_IOC_SHUTDOWN (_IOR('X', 125, __u32)); with
// EXT4_GOING_FLAGS_NOLOGFLUSH every later write and fsync on the
// filesystem fails with EIO, as on a disk that died or a filesystem the
// kernel forced read-only after errors. It works for root, where chmod
// does not stop writes and a read-only remount is refused while files are
// open for writing.
const (
	ext4IOCShutdown          = 0x8004587d
	ext4GoingFlagsNoLogFlush = 2
)

// TestCheckpointDirFails: the checkpoint directory lives on its own small
// ext4 filesystem (a loop device). While the workload runs the filesystem
// stops taking writes. Hamal must stop loudly, naming the checkpoint, and
// lose nothing: once the filesystem is mounted again and hamal restarted,
// the target must equal the source.
// TestCheckpointDirFailsStaysUpInStateError checks the state on the way.
func TestCheckpointDirFails(t *testing.T) {
	gate(t, false)
	mnt := mountScratchExt4(t)
	if mnt == "" {
		t.Skip("chaos: cannot mount a scratch ext4 filesystem (needs root, loop devices and mkfs.ext4)")
	}
	e := newEnv(t, envOptions{checkpointDir: filepath.Join(mnt, "state")})
	load := e.startLoad(t, LoadOptions{Writers: 2})
	rep := &Report{Scenario: "checkpoint-dir-fails"}
	if err := load.WaitCommitted(200, time.Minute); err != nil {
		t.Fatal(err)
	}
	e.checkpointFails(t, rep, mnt)
	e.finish(t, rep, load, e.src)
}

// checkpointFails makes the filesystem of the checkpoint directory (mounted
// at mnt) fail, requires hamal to stop naming the checkpoint, then mounts
// it again, restarts hamal and waits for recovery.
func (e *env) checkpointFails(t *testing.T, rep *Report, mnt string) {
	t.Helper()
	shutdownFS(t, mnt)
	rep.Faults++
	start := time.Now()
	how := waitStopped(t, e, 2*time.Minute)
	rep.Note("checkpoint filesystem failed: hamal stopped after %s: %s", time.Since(start).Round(10*time.Millisecond), how)
	if !strings.Contains(how, "checkpoint") && !strings.Contains(how, filepath.Join(mnt, "state")) {
		t.Errorf("hamal's stop does not name the checkpoint or its directory: %s", how)
	}
	// The operator repairs the filesystem and restarts hamal.
	if !e.hamal.Exited() {
		e.hamal.Kill()
	}
	remount(t, mnt)
	e.startHamal(t)
	e.measureRecovery(t, rep, e.src, "checkpoint dir writable again", pick(2*time.Minute, 5*time.Minute))
}

// TestCheckpointDirFailsStaysUpInStateError is the design's expectation
// for a checkpoint directory that stops taking writes: a clear error and
// state "error", the process staying up for /status and /resume.
func TestCheckpointDirFailsStaysUpInStateError(t *testing.T) {
	gate(t, false)
	mnt := mountScratchExt4(t)
	if mnt == "" {
		t.Skip("chaos: cannot mount a scratch ext4 filesystem (needs root, loop devices and mkfs.ext4)")
	}
	e := newEnv(t, envOptions{checkpointDir: filepath.Join(mnt, "state")})
	load := e.startLoad(t, LoadOptions{Writers: 1})
	if err := load.WaitCommitted(50, time.Minute); err != nil {
		t.Fatal(err)
	}
	shutdownFS(t, mnt)
	st := e.waitState(t, time.Minute, pipeline.StateError)
	if !strings.Contains(st.LastError, "checkpoint") {
		t.Errorf("last_error %q does not name the checkpoint", st.LastError)
	}
}

// TestCheckpointStoreSaveOnFailedDisk: checkpoint.Store.Save on a
// filesystem that fails writes returns an error (which the pipeline turns
// into state "error") rather than panicking from Pebble's fatal commit
// error.
func TestCheckpointStoreSaveOnFailedDisk(t *testing.T) {
	gate(t, false)
	mnt := mountScratchExt4(t)
	if mnt == "" {
		t.Skip("chaos: cannot mount a scratch ext4 filesystem (needs root, loop devices and mkfs.ext4)")
	}
	store, err := checkpoint.Open(filepath.Join(mnt, "state"))
	if err != nil {
		t.Fatal(err)
	}
	cp := checkpoint.Checkpoint{Seq: 1, Pos: []byte(`{"gtid":"1-1-1"}`), SavedAt: time.Now()}
	if err := store.Save("chaos", cp); err != nil {
		t.Fatal(err)
	}
	shutdownFS(t, mnt)
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Save on a failed disk panicked instead of returning an error: %v", r)
			}
		}()
		if err := store.Save("chaos", cp); err == nil {
			t.Error("Save on a failed disk returned nil")
		} else {
			t.Logf("Save on a failed disk: %v", err)
		}
	}()
}

// waitStopped waits until hamal stopped replicating because of the failed
// checkpoint directory: state "error" (its last_error is returned) or the
// process exited (the last lines of its output are returned).
func waitStopped(t *testing.T, e *env, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if e.hamal.Exited() {
			out := e.hamal.Output()
			if i := strings.Index(out, "panic:"); i >= 0 {
				line, _, _ := strings.Cut(out[i:], "\n")
				return "process exited: " + line
			}
			return "process exited: " + lastLines(out, 3)
		}
		if st, err := e.hamal.Status(); err == nil && st.State == pipeline.StateError {
			return "state error: " + st.LastError
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, err := e.hamal.Status()
	t.Fatalf("hamal still replicating %s after its checkpoint filesystem failed: %+v (err %v)", timeout, st, err)
	return ""
}

// mountScratchExt4 mounts a fresh 64 MiB ext4 filesystem (loop device over
// a file) and returns its mount point, or "" (with the reason logged) when
// the machine cannot: not root, no loop devices, no mkfs.ext4.
func mountScratchExt4(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("chaos: not root: cannot mount a filesystem for the checkpoint directory")
		return ""
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "ckpt.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(createFile(t, img), 64<<20); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"mkfs.ext4", "-q", "-F", img}, {"mount", "-o", "loop", img, mnt}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Logf("chaos: cannot make a scratch ext4 filesystem for the checkpoint directory (%s: %v %s)", args[0], err, out)
			return ""
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			_ = exec.Command("umount", "-l", mnt).Run()
			t.Logf("umount %s: %v %s", mnt, err, out)
		}
	})
	return mnt
}

func createFile(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// shutdownFS makes every later write on the filesystem at mnt fail.
func shutdownFS(t *testing.T, mnt string) {
	t.Helper()
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.IoctlSetPointerInt(fd, ext4IOCShutdown, ext4GoingFlagsNoLogFlush); err != nil {
		t.Skipf("chaos: EXT4_IOC_SHUTDOWN refused (%v); cannot make the checkpoint directory fail", err)
	}
}

// remount unmounts and mounts the filesystem at mnt again (ext4 replays
// its journal), making it writable.
func remount(t *testing.T, mnt string) {
	t.Helper()
	src, err := exec.Command("findmnt", "-n", "-o", "SOURCE", mnt).Output()
	if err != nil {
		t.Fatalf("findmnt %s: %v", mnt, err)
	}
	dev := strings.TrimSpace(string(src))
	img := filepath.Join(filepath.Dir(mnt), "ckpt.img")
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount %s (%s): %v %s", mnt, dev, err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s again: %v %s", img, err, out)
	}
}
