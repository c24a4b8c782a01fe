package snapshot

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hamal-replication/hamal/checkpoint"
	srcmysql "github.com/hamal-replication/hamal/source/mysql"
	"github.com/hamal-replication/hamal/tablecopy"
)

// state is everything the snapshot persists, as one JSON value under
// snapshot/<channel> in the channel's checkpoint store, written (synced)
// when the position is taken and after every chunk every target holds.
type state struct {
	Version int `json:"version"`
	// Position is the snapshot position, taken before anything was read:
	// the stream starts here (the hand-off), however many restarts the
	// copy takes.
	Position srcmysql.Position `json:"position"`
	TakenAt  time.Time         `json:"taken_at"`
	// Tables are the copied tables ("schema.table"), as the filters
	// matched them when the position was taken.
	Tables []string `json:"tables"`
	// Segments are the copy's progress, by "<table>/<n>".
	Segments   map[string]tablecopy.Segment `json:"segments"`
	Done       bool                         `json:"done"`
	FinishedAt time.Time                    `json:"finished_at,omitzero"`
	// ConsistentAt is the source's position once the last chunk was read:
	// when the stream has applied up to it, the target holds the source's
	// rows as of the stream's position.
	ConsistentAt *srcmysql.Position `json:"consistent_at,omitempty"`
}

const stateVersion = 1

func stateKey(channel string) string { return "snapshot/" + channel }

func loadState(store *checkpoint.Store, channel string) (*state, bool, error) {
	b, ok, err := store.Get(stateKey(channel))
	if err != nil || !ok {
		return nil, false, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, false, fmt.Errorf("decode snapshot state of channel %s: %w", channel, err)
	}
	if st.Version != stateVersion {
		return nil, false, fmt.Errorf("snapshot state of channel %s has version %d, this hamal knows %d", channel, st.Version, stateVersion)
	}
	return &st, true, nil
}

func saveState(store *checkpoint.Store, channel string, st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := store.Set(stateKey(channel), b); err != nil {
		return fmt.Errorf("persist snapshot state: %w", err)
	}
	return nil
}

// Position returns the snapshot position recorded for channel in store
// and whether the copy is done; ok is false when the channel has no
// snapshot state. For tests and tools (the store must not be open
// elsewhere).
func Position(store *checkpoint.Store, channel string) (pos srcmysql.Position, done, ok bool, err error) {
	st, ok, err := loadState(store, channel)
	if err != nil || !ok {
		return srcmysql.Position{}, false, ok, err
	}
	return st.Position, st.Done, true, nil
}
