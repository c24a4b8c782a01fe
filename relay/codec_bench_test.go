package relay

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/event"
	"golang.org/x/sys/unix"
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

// BenchmarkRelayCostRatio is the relay's CPU cost in one goroutine, free of
// the hand-offs between goroutines that make BenchmarkRelayOnOff's wall
// clock ratio swing on a loaded machine, and timed by the CPU clock of its
// thread, which stands still while other processes have the core (GC
// assists count; background GC work on other threads does not). Rounds of
// 1000 Txns, each made by
// the bench source and given its conflict keys (off), alternate with the
// same plus the relay's work in between (on): encode, frame, buffered write
// to a segment file, read back, CRC check, decode. The ratio (off time / on
// time, summed over the rounds) is what fraction of the source's rate one
// core keeps with the relay in the path; with the relay's goroutines on
// other cores the pipelined rate is higher.
func BenchmarkRelayCostRatio(b *testing.B) {
	const round = 1000
	dir := b.TempDir()
	var off, on time.Duration
	var frame, payload []byte
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	for i := 0; i < b.N; i += round {
		src := &benchSource{limit: round}
		start := threadCPU()
		for j := 0; j < round; j++ {
			t, _ := src.Next(context.Background())
			_ = t.ConflictKeys()
		}
		off += threadCPU() - start

		src = &benchSource{limit: round}
		path := filepath.Join(dir, segName(uint64(i+1)))
		start = threadCPU()
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriterSize(f, writerBufferBytes)
		bw.WriteString(segMagic)
		enc := newEncoder()
		for j := 0; j < round; j++ {
			t, _ := src.Next(context.Background())
			payload, err = enc.appendTxn(payload[:0], uint64(j+1), t)
			if err != nil {
				b.Fatal(err)
			}
			enc.commit()
			frame = appendRecord(frame[:0], payload)
			bw.Write(frame)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		size, _ := f.Seek(0, io.SeekCurrent)
		f.Close()
		rr, err := openRecords(path)
		if err != nil {
			b.Fatal(err)
		}
		dec := newDecoder(&tableIntern{})
		for j := 0; j < round; j++ {
			p, err := rr.next(size)
			if err != nil {
				b.Fatal(err)
			}
			_, t, err := dec.decodeTxn(p)
			if err != nil {
				b.Fatal(err)
			}
			_ = t.ConflictKeys()
		}
		rr.close()
		on += threadCPU() - start
		os.Remove(path)
	}
	b.ReportMetric(off.Seconds()/on.Seconds(), "ratio")
	b.ReportMetric(float64(on-off)/float64(max(b.N, round)), "relay-ns/txn")
}

// threadCPU is the CPU time of the calling thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}
