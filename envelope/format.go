package envelope

import (
	"fmt"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// Formats of the message values.
const (
	FormatHamal    = "hamal"
	FormatDebezium = "debezium"
	FormatCanal    = "canal"
	FormatMaxwell  = "maxwell"
)

// FormatOptions choose a format and the options of it that users of its
// project commonly change.
type FormatOptions struct {
	// Name is FormatHamal (also for ""), FormatDebezium, FormatCanal or
	// FormatMaxwell.
	Name string
	// Debezium: Schemas wraps each key and value in {"schema","payload"}
	// as Kafka Connect's JSON converter does with schemas.enable=true.
	Schemas bool
	// Debezium: NoTombstones leaves out the null-valued message Debezium
	// writes after a delete (tombstones.on.delete=false).
	NoTombstones bool
	// Debezium: DecimalHandling is decimal.handling.mode: precise
	// (default; base64 of the unscaled two's-complement bytes), double or
	// string.
	DecimalHandling string
}

// Encoder turns the changes of a Txn into messages of one format, in change
// order. It is safe for concurrent use.
type Encoder interface {
	Encode(txn *event.Txn, now time.Time) ([]Message, error)
}

// NewEncoder returns the Encoder of a format.
func NewEncoder(o FormatOptions, meta Meta) (Encoder, error) {
	switch o.Name {
	case "", FormatHamal:
		return hamalEncoder{meta}, nil
	case FormatDebezium:
		switch o.DecimalHandling {
		case "", "precise", "double", "string":
		default:
			return nil, fmt.Errorf("debezium decimal handling %q is not one of precise, double, string", o.DecimalHandling)
		}
		return &debeziumEncoder{meta: meta, o: o}, nil
	case FormatCanal:
		return &canalEncoder{meta: meta}, nil
	case FormatMaxwell:
		return maxwellEncoder{meta}, nil
	}
	return nil, fmt.Errorf("format %q is not one of hamal, debezium, canal, maxwell", o.Name)
}

type hamalEncoder struct{ meta Meta }

func (e hamalEncoder) Encode(txn *event.Txn, now time.Time) ([]Message, error) {
	return Encode(txn, e.meta, now)
}
