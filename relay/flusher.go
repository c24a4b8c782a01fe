package relay

import (
	"fmt"
)

// syncLocked syncs the active file. wmu is held.
func (r *Relay) syncLocked() error {
	if !r.dirty || r.file == nil {
		return nil
	}
	r.fmu.Lock()
	err := r.file.Sync()
	r.fmu.Unlock()
	if err != nil {
		return fmt.Errorf("relay: sync %s: %w", r.active.path, err)
	}
	r.dirty = false
	return nil
}

// syncBehind syncs the active file while the writer goes on: fmu, not
// wmu, is held during the sync, and a seal waits for it.
func (r *Relay) syncBehind() error {
	r.wmu.Lock()
	f, dirty := r.file, r.dirty
	if f == nil || !dirty {
		r.wmu.Unlock()
		return nil
	}
	path := r.active.path
	r.dirty = false // what is written from now on is dirty again
	r.fmu.Lock()
	r.wmu.Unlock()
	err := f.Sync()
	r.fmu.Unlock()
	if err != nil {
		r.wmu.Lock()
		if r.file == f {
			r.dirty = true
		}
		r.wmu.Unlock()
		return fmt.Errorf("relay: sync %s: %w", path, err)
	}
	return nil
}
