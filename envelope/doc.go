// Package envelope owns Hamal's JSON change envelope: the message format
// sink/kafka writes and source/kafka reads back. One envelope carries one
// row change together with the description of its table, so a consumer
// (Hamal or any other) needs no schema registry to interpret it.
//
// Invariants:
//   - Encode then Decode returns the same change: the same operation,
//     namespace, table description and the same values, of Go types the
//     MySQL sink writes back byte for byte (see the value table in
//     docs/kafka.md and Encode's comment).
//   - The message key of a row is canonical: equal row keys give equal
//     message key bytes, so every change of one row lands in one partition.
//   - An update that changes the row key is split into a delete of the old
//     key and a create of the new one, each keyed by its own row key, so the
//     order of each key's messages alone decides its final state.
//
// Usage sketch:
//
//	msgs, err := envelope.Encode(txn, i, envelope.Meta{Channel: "c", Site: "sz"})
//	for _, m := range msgs { write(m.Key, m.Value) }
//	…
//	ch, meta, err := decoder.Decode(value) // an event.Change with its Table
package envelope
