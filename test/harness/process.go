package harness

import (
	"os/exec"
	"runtime"
	"syscall"
)

// Spawn starts cmd so that it is killed when the test binary dies, and
// returns a channel that yields cmd.Wait's result once it has exited.
//
// The kill relies on PR_SET_PDEATHSIG, which Linux fires when the *thread*
// that forked the child ends, not the process (golang/go#27505). The Go
// runtime ends threads whose goroutine exits while locked to them, so a
// child forked from an arbitrary thread can be SIGKILLed mid-test by code
// that has nothing to do with it. Spawn therefore forks from a goroutine
// locked to its thread and keeps it there until the child has exited.
func Spawn(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}
