package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// RelayMark is one position of a channel's relay log (see package relay):
// the relay seq of a record and the source position after its Txn.
type RelayMark struct {
	Seq        uint64         `json:"seq"`
	Pos        event.Position `json:"pos"`
	CommitTime time.Time      `json:"commit_time,omitzero"`
}

// RelayPositions are the relay's two positions: how far it has read from
// the source into its log (Read), and how far the applier has applied from
// the log (Applied, the record the channel's checkpoint names). They live
// under relay/<channel>, beside checkpoint/<channel>, which stays the
// authority on what was applied.
type RelayPositions struct {
	Read    RelayMark `json:"read"`
	Applied RelayMark `json:"applied"`
	SavedAt time.Time `json:"saved_at"`
}

func relayKey(channel string) string { return "relay/" + channel }

// LoadRelay returns the relay positions of channel; ok is false when there
// are none.
func (s *Store) LoadRelay(channel string) (p RelayPositions, ok bool, err error) {
	if channel == "" {
		return p, false, errors.New("load relay positions: empty channel name")
	}
	raw, ok, err := s.Get(relayKey(channel))
	if err != nil || !ok {
		return p, false, err
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, false, fmt.Errorf("load %s from %q: decode: %w", relayKey(channel), s.dir, err)
	}
	return p, true, nil
}

// SaveRelay durably replaces the relay positions of channel.
func (s *Store) SaveRelay(channel string, p RelayPositions) error {
	if channel == "" {
		return errors.New("save relay positions: empty channel name")
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("save relay positions of %s: encode: %w", channel, err)
	}
	return s.Set(relayKey(channel), raw)
}
