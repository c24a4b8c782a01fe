package reshard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	"github.com/hamal-replication/hamal/tablecopy"
)

// Phase is where a migration stands. Phases only move forward, except that
// cancel ends any of them.
type Phase string

// Phases, in order.
const (
	PhaseNew       Phase = "new"
	PhaseCopy      Phase = "copy"    // snapshot taken, chunks being copied
	PhaseCatchup   Phase = "catchup" // copy done, channels replaying from the snapshot
	PhaseCutover   Phase = "cutover" // sources fenced; see CutoverState.Step
	PhaseComplete  Phase = "complete"
	PhaseCancelled Phase = "cancelled"
)

// Cut-over steps, recorded before each is taken so a restart resumes it.
const (
	StepFenced   = "fenced"   // sources fenced; waiting for the targets
	StepSwitched = "switched" // targets caught up; reverse replication runs
)

// State is everything a migration persists, as one JSON value under
// migration/<name>/state (written with pebble.Sync after every step and
// every copied chunk).
type State struct {
	Phase   Phase         `json:"phase"`
	Sources []SourceState `json:"sources"`
	// Segments holds copy progress: one entry per source, table and PK
	// range, keyed "<source>/<table>/<segment>".
	Segments map[string]*Segment `json:"segments"`
	Cutover  CutoverState        `json:"cutover"`
	Verify   *VerifyReport       `json:"verify,omitempty"`
	// Record is the closing note of a complete or cancelled migration.
	Record    string    `json:"record,omitempty"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SourceState is one source shard's positions.
type SourceState struct {
	Addr string `json:"addr"`
	// Snapshot is the source's GTID position taken before the copy
	// started (engine/mysql SnapshotPosition): the catch-up replays from here.
	Snapshot string `json:"snapshot"`
	// Final is the source's position once fenced (cut-over).
	Final string `json:"final,omitempty"`
}

// Segment is one key range of one table on one source and its copy
// progress (tablecopy.Segment; the JSON form is unchanged).
type Segment = tablecopy.Segment

// CutoverState records the cut-over.
type CutoverState struct {
	Step string `json:"step,omitempty"`
	// TargetStart is each target's @@gtid_binlog_pos once the targets had
	// caught up: reverse replication starts there.
	TargetStart []string  `json:"target_start,omitempty"`
	FencedAt    time.Time `json:"fenced_at,omitzero"`
	// Locked lists, per source, the accounts the cut-over locked because
	// they can write through read_only (cutover.read_only_bypass: fence);
	// unfencing the sources unlocks them.
	Locked     [][]string `json:"locked,omitempty"`
	SwitchedAt time.Time  `json:"switched_at,omitzero"`
}

func stateKey(name string) string { return "migration/" + name + "/state" }

func loadState(store *checkpoint.Store, name string) (*State, bool, error) {
	b, ok, err := store.Get(stateKey(name))
	if err != nil || !ok {
		return nil, ok, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, false, fmt.Errorf("decode migration state %s: %w", name, err)
	}
	if st.Segments == nil {
		st.Segments = map[string]*Segment{}
	}
	return &st, true, nil
}

func saveState(store *checkpoint.Store, name string, st *State) ([]byte, error) {
	st.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return b, store.Set(stateKey(name), b)
}

// mirrorPath is the file beside the Pebble files that repeats the state
// for readers that must not take the store's lock (status while no process
// serves it, or while one is starting). Pebble ignores files it did not
// name.
func mirrorPath(dir, name string) string { return filepath.Join(dir, "hamal-migration-"+name+".json") }

// writeMirror replaces the mirror file atomically (write, rename); the
// Pebble state stays the one the migration resumes from.
func writeMirror(dir, name string, b []byte) error {
	tmp := mirrorPath(dir, name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, mirrorPath(dir, name))
}

// LoadState reads a migration's state from its state dir without taking
// the store's lock (for status when no process serves it): from the
// mirror file the migration writes with every save. A state dir written
// before the mirror existed is read from the store, which must then not be
// open elsewhere.
func LoadState(dir, name string) (*State, error) {
	if b, err := os.ReadFile(mirrorPath(dir, name)); err == nil {
		var st State
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("decode %s: %w", mirrorPath(dir, name), err)
		}
		return &st, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	store, err := checkpoint.Open(dir)
	if errors.Is(err, checkpoint.ErrLocked) {
		return nil, fmt.Errorf("state dir %s is in use by a process that does not answer on admin.listen, and has no status file yet: %w", dir, err)
	}
	if err != nil {
		return nil, err
	}
	defer store.Close()
	st, ok, err := loadState(store, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no migration %s in %s", name, dir)
	}
	return st, nil
}
