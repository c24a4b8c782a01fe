package relay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockName is the lock file in a relay dir. It holds the pid of the
// process that has the dir open, for the error a second opener gets.
const lockName = "LOCK"

// DirInUseError is returned by Open when another Relay (in this process or
// another one) has the same dir open: two writers would interleave records
// and delete each other's segments.
type DirInUseError struct {
	Dir string
	// PID is the holder's process id as it recorded it; 0 when unknown.
	PID int
}

func (e *DirInUseError) Error() string {
	holder := "another process (pid unknown)"
	if e.PID > 0 {
		holder = fmt.Sprintf("process %d", e.PID)
		if e.PID == os.Getpid() {
			holder = fmt.Sprintf("this process (pid %d), for another channel", e.PID)
		}
	}
	return fmt.Sprintf("relay dir %s is in use by %s (lock %s): two hamal channels must not share a relay dir; stop the other one, or give this channel its own relay.dir",
		e.Dir, holder, filepath.Join(e.Dir, lockName))
}

// lockDir takes an exclusive flock on dir's lock file and records our pid
// in it. The kernel releases the lock when the file is closed or the
// process dies, kill -9 included: a stale lock file never blocks a restart.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("relay dir %s: open lock file: %w", dir, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &DirInUseError{Dir: dir, PID: readPID(f)}
		}
		return nil, fmt.Errorf("relay dir %s: lock %s: %w", dir, path, err)
	}
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(pid), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("relay dir %s: write lock file %s: %w", dir, path, err)
	}
	return f, nil
}

// readPID reads the pid a lock holder recorded; 0 when there is none (it
// may not have written it yet).
func readPID(f *os.File) int {
	var b [32]byte
	n, _ := f.ReadAt(b[:], 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// unlockDir releases the lock. The lock file stays: removing it would let
// a third opener lock a new file while a second one holds the old one.
func unlockDir(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
}
