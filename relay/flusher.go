package relay

import (
	"fmt"
	"os"
)

// flush is the flusher's tick under FsyncBatch (every BatchInterval): it
// syncs the active file while the writer goes on writing, so the writer
// never waits for the disk. It takes the file from r.unsynced and marks it
// as being synced (r.syncing); a seal waits for that sync before it closes
// the file (retire). A sync clears r.unsynced only when nothing was
// published while it ran; after a failure the next tick tries again.
func (r *Relay) flush() error {
	r.mu.Lock()
	f, gen := r.unsynced, r.unsyncedGen
	r.syncing = f
	r.mu.Unlock()
	if f == nil {
		return nil
	}
	err := f.Sync()
	r.mu.Lock()
	r.syncing = nil
	if err == nil && r.unsynced == f && r.unsyncedGen == gen {
		r.unsynced = nil
	}
	r.broadcastLocked() // a seal may wait in retire
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("relay: sync %s: %w", f.Name(), err)
	}
	return nil
}

// retire takes f, the active file about to be closed, from the flusher:
// it waits for a sync of f in progress to end and drops f from r.unsynced,
// so that the flusher never syncs a closed file. The caller (the writer,
// or Close) has synced f or does not need it synced.
func (r *Relay) retire(f *os.File) {
	r.mu.Lock()
	for r.syncing == f {
		ch := r.notify
		r.mu.Unlock()
		<-ch
		r.mu.Lock()
	}
	if r.unsynced == f {
		r.unsynced = nil
	}
	r.mu.Unlock()
}
