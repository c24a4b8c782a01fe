package relay

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hamal-replication/hamal/event"
)

// benchTxns returns n Txns as the bench source emits them.
func benchTxns(n int) []*event.Txn {
	src := &benchSource{limit: n}
	txns := make([]*event.Txn, n)
	for i := range txns {
		txns[i], _ = src.Next(context.Background())
	}
	return txns
}

// BenchmarkEncode is the writer's per-record cost: encode and frame one
// one-row Txn into the reused buffer.
func BenchmarkEncode(b *testing.B) {
	txns := benchTxns(1024)
	enc := newEncoder()
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		buf, err = enc.appendFramed(buf[:0], uint64(i+1), txns[i%len(txns)])
		if err != nil {
			b.Fatal(err)
		}
		enc.commit()
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecode is the applier's per-record cost without I/O: 1024
// records of one segment, decoded in order (the first defines the table).
func BenchmarkDecode(b *testing.B) {
	txns := benchTxns(1024)
	payloads := make([][]byte, len(txns))
	enc := newEncoder()
	for i, t := range txns {
		p, err := enc.appendTxn(nil, uint64(i+1), t)
		if err != nil {
			b.Fatal(err)
		}
		enc.commit()
		payloads[i] = p
	}
	intern := &tableIntern{}
	var dec *decoder
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(payloads) == 0 {
			dec = newDecoder(intern)
		}
		if _, _, err := dec.decodeTxn(payloads[i%len(payloads)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSegmentWriteRead writes b.N records to a segment file through
// the writer's path (encode, frame, buffered write) and reads them all
// back through the applier's (record reader, CRC check, decode): ns/op and
// allocs/op are per Txn, both ways.
func BenchmarkSegmentWriteRead(b *testing.B) {
	txns := benchTxns(1024)
	path := filepath.Join(b.TempDir(), segName(1))
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ReportAllocs()
	b.ResetTimer()
	bw := bufio.NewWriterSize(f, writerBufferBytes)
	bw.WriteString(segMagic)
	enc := newEncoder()
	var rec []byte
	for i := 0; i < b.N; i++ {
		var err error
		rec, err = enc.appendFramed(rec[:0], uint64(i+1), txns[i%len(txns)])
		if err != nil {
			b.Fatal(err)
		}
		enc.commit()
		if _, err := bw.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	info, _ := f.Stat()
	rr, err := openRecords(path)
	if err != nil {
		b.Fatal(err)
	}
	defer rr.close()
	dec := newDecoder(&tableIntern{})
	for i := 0; i < b.N; i++ {
		payload, err := rr.next(info.Size())
		if err != nil {
			b.Fatal(err)
		}
		rseq, _, err := dec.decodeTxn(payload)
		if err != nil || rseq != uint64(i+1) {
			b.Fatalf("record %d: rseq %d, %v", i+1, rseq, err)
		}
	}
	if _, err := rr.next(info.Size()); err != io.EOF {
		b.Fatalf("after the last record: %v", err)
	}
}
