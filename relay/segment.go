package relay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hamal-replication/hamal/event"
)

// A segment file is segMagic followed by records. The magic ends in the
// format version: a segment of another version (or a file that is not a
// segment) is refused with a FormatError, never read as records nor
// truncated as torn. A file shorter than the magic that is a prefix of it
// was cut while being created: that is torn. A record is
//
//	uint32 length of payload (little endian)
//	uint32 CRC-32C of payload
//	payload: uvarint relay seq, then the Txn (codec.go)
//
// A segment is named by the relay seq of its first record, zero-padded so
// that names sort in relay order.
const (
	segMagic  = segFamily + "2"
	segFamily = "HAMALRL" // segMagic without its version
	// segMagicV1 is the format before column metadata (event.Column's
	// Meta and Members, flags 8 and 16): its records are a subset of
	// version 2's, so this version reads them as they are.
	segMagicV1 = segFamily + "1"
	segSuffix  = ".seg"
	recHeader  = 8
	// maxRecord bounds one record: a length beyond it is a torn or foreign
	// header, never an allocation.
	maxRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segment is one file of the relay. first..last are the relay seqs it holds
// (last = first-1 while empty); size is the bytes a reader may read.
type segment struct {
	first, last uint64
	path        string
	size        int64
	created     time.Time
	firstCommit time.Time // source commit time of its first record
	sealed      bool      // no more appends; may be deleted once applied
}

func (s *segment) empty() bool { return s.last < s.first }

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// listSegments returns the segment files of dir in relay order.
func listSegments(dir string) ([]*segment, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []*segment
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("relay dir %s holds %s, which is not a relay segment name; move it away", dir, name)
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		segs = append(segs, &segment{first: first, last: first - 1, path: filepath.Join(dir, name),
			size: info.Size(), created: info.ModTime(), sealed: true})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	return segs, nil
}

// appendRecord appends one framed record to b.
func appendRecord(b, payload []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// appendFramed appends the record of t (header and payload) to b, encoding
// the payload in place. On error the caller rolls the encoder back.
func (e *encoder) appendFramed(b []byte, rseq uint64, t *event.Txn) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // recHeader, filled below
	b, err := e.appendTxn(b, rseq, t)
	if err != nil {
		return b[:start], err
	}
	payload := b[start+recHeader:]
	if len(payload) > maxRecord {
		return b[:start], fmt.Errorf("relay: a transaction at %s encodes to %d bytes, over the record limit of %d", t.Pos, len(payload), maxRecord)
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b, nil
}

// errTorn marks the end of the valid records of a segment: a short header,
// a short payload or a checksum mismatch.
var errTorn = errors.New("torn record")

// recordReader reads the records of one segment file in order, up to a
// limit the writer has published.
type recordReader struct {
	f   *os.File
	br  *bufio.Reader
	off int64 // offset of the next record
	// v1 is set for a segment of format 1, whose records lack the table
	// flags byte (decoder.v1).
	v1  bool
	hdr [recHeader]byte
	// arena holds the payloads of consecutive small records: one
	// allocation for many. A payload is handed out capped and never
	// written again, so the Txns decoded from it may keep slices of it; a
	// Txn kept long keeps at most one arena chunk alive.
	arena []byte
}

// Payload allocation: records up to arenaRecord bytes share chunks of
// arenaChunk bytes; larger ones get their own buffer.
const (
	arenaChunk  = 16 << 10 // the largest small size class: a bigger one is a costly large allocation
	arenaRecord = 2 << 10
)

// payloadBuf returns a buffer of n bytes that nothing else refers to.
func (rr *recordReader) payloadBuf(n int) []byte {
	if n > arenaRecord {
		return make([]byte, n)
	}
	if cap(rr.arena)-len(rr.arena) < n {
		rr.arena = make([]byte, 0, arenaChunk)
	}
	off := len(rr.arena)
	rr.arena = rr.arena[:off+n]
	return rr.arena[off : off+n : off+n]
}

func openRecords(path string) (*recordReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	rr := &recordReader{f: f, br: bufio.NewReaderSize(f, 256<<10)}
	var magic [len(segMagic)]byte
	n, err := io.ReadFull(rr.br, magic[:])
	if err != nil || (string(magic[:]) != segMagic && string(magic[:]) != segMagicV1) {
		f.Close()
		head := string(magic[:n])
		switch {
		case err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
			return nil, err
		case err != nil && strings.HasPrefix(segMagic, head):
			return nil, fmt.Errorf("%s: %w: no segment header", path, errTorn)
		}
		return nil, &FormatError{Path: path, Head: head}
	}
	rr.off = int64(len(segMagic))
	rr.v1 = string(magic[:]) == segMagicV1
	return rr, nil
}

// next returns the payload of the next record, in a buffer that the
// caller owns and nothing writes again (decoded values refer to it). It returns io.EOF at limit and
// errTorn when the bytes before limit are not a whole valid record.
func (rr *recordReader) next(limit int64) ([]byte, error) {
	if rr.off >= limit {
		return nil, io.EOF
	}
	if limit-rr.off < recHeader {
		return nil, errTorn
	}
	if _, err := io.ReadFull(rr.br, rr.hdr[:]); err != nil {
		return nil, tornIfShort(err)
	}
	n := int64(binary.LittleEndian.Uint32(rr.hdr[:4]))
	sum := binary.LittleEndian.Uint32(rr.hdr[4:])
	if n > maxRecord || rr.off+recHeader+n > limit {
		return nil, errTorn
	}
	payload := rr.payloadBuf(int(n))
	if _, err := io.ReadFull(rr.br, payload); err != nil {
		return nil, tornIfShort(err)
	}
	if crc32.Checksum(payload, castagnoli) != sum {
		return nil, errTorn
	}
	rr.off += recHeader + n
	return payload, nil
}

// FormatError is a file named like a segment that this version of the
// relay cannot read: written by another relay format, or not a segment.
type FormatError struct {
	Path string
	Head string // the file's first bytes
}

func (e *FormatError) Error() string {
	if v, ok := strings.CutPrefix(e.Head, segFamily); ok && len(e.Head) == len(segMagic) {
		return fmt.Sprintf("relay segment %s is relay format %q, this hamal reads formats %q and %q: stop the channel and remove the relay dir %s (what it holds unapplied is read again from the source, from the checkpoint), or run the hamal version that wrote it",
			e.Path, v, strings.TrimPrefix(segMagicV1, segFamily), strings.TrimPrefix(segMagic, segFamily), filepath.Dir(e.Path))
	}
	return fmt.Sprintf("%s is not a relay segment (it starts with %q): move it out of the relay dir %s", e.Path, e.Head, filepath.Dir(e.Path))
}

func tornIfShort(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTorn
	}
	return err
}

func (rr *recordReader) close() error { return rr.f.Close() }

// recordHead is what a record says before its changes: enough to recover
// and locate without a segment's table dictionary.
type recordHead struct {
	rseq   uint64
	pos    event.Position
	commit time.Time
}

// peekHead decodes the fields written before Changes (see appendTxn).
func peekHead(payload []byte) (recordHead, error) {
	r := &reader{b: payload}
	h := recordHead{rseq: r.uvarint()}
	for r.err == nil {
		switch r.byte() {
		case txnSeq:
			r.uvarint()
		case txnPos:
			h.pos = event.Position(r.bytes())
		case txnOrigin:
			r.raw()
		case txnPath:
			n, _ := r.count()
			for i := 0; i < n && r.err == nil; i++ {
				r.raw()
			}
		case txnCommitTime:
			h.commit = r.time()
		case txnKind:
			r.byte()
		default:
			// Changes or a later field: the head is complete.
			return h, r.err
		}
	}
	return h, r.err
}

// scanTail reads a segment to its end and returns its valid records'
// range, the offset after the last valid one, and whether bytes follow it
// (a torn tail). fn, when set, sees every valid record's head.
func scanSegment(s *segment, fn func(recordHead) error) (validEnd int64, torn bool, err error) {
	rr, err := openRecords(s.path)
	if errors.Is(err, errTorn) {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer rr.close()
	first := true
	for {
		payload, err := rr.next(s.size)
		if err == io.EOF {
			return rr.off, false, nil
		}
		if errors.Is(err, errTorn) {
			return rr.off, true, nil
		}
		if err != nil {
			return rr.off, false, err
		}
		h, err := peekHead(payload)
		if err != nil {
			// A checksummed record that does not decode is not a torn
			// write: stop here too, but say so.
			return rr.off, true, fmt.Errorf("%s at offset %d: %w", s.path, rr.off, err)
		}
		if first {
			s.first, s.firstCommit, first = h.rseq, h.commit, false
		}
		s.last = h.rseq
		if fn != nil {
			if err := fn(h); err != nil {
				return rr.off, false, err
			}
		}
	}
}
