package redis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// respReader reads the replication stream and counts the bytes consumed,
// since the master's offsets count bytes of the stream.
type respReader struct {
	br *bufio.Reader
	n  int64 // bytes consumed
	// maxBulk bounds one bulk string (Config.MaxBulkBytes); 0: none.
	maxBulk int64
	// slab is where small arguments are cut from, so a command costs one
	// allocation per slabSize bytes rather than one per argument. An
	// argument keeps its slab alive; slabs are small enough for that.
	slab []byte
}

// Arguments up to smallBulk bytes are cut from slabs of slabSize bytes.
const (
	smallBulk = 512
	slabSize  = 32 << 10
)

// errProtocol marks a malformed stream.
var errProtocol = errors.New("redis replication protocol error")

// ErrTooLarge is the error of a bulk string, or an RDB string or
// collection, longer than Config.MaxBulkBytes (source.max_bulk_bytes).
var ErrTooLarge = errors.New("longer than source.max_bulk_bytes")

// preallocBulk is the most of a bulk string allocated before its bytes
// arrive: a declared length is not memory.
const preallocBulk = 64 << 10

// readLine returns one line without its CRLF.
func (r *respReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: line longer than %d bytes", errProtocol, r.br.Size())
	}
	if err != nil {
		return nil, err
	}
	r.n += int64(len(line))
	return bytes.TrimRight(line, "\r\n"), nil
}

// readCommand reads one command: an array of bulk strings, or an inline
// command (a master may send a bare "\n" while it prepares the RDB).
func (r *respReader) readCommand() ([][]byte, error) {
	line, err := r.readLine()
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, nil
	}
	if line[0] != '*' {
		return bytes.Fields(line), nil
	}
	n, err := strconv.Atoi(string(line[1:]))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("%w: bad array header %q", errProtocol, line)
	}
	args := make([][]byte, 0, min(n, 64))
	for range n {
		hdr, err := r.readLine()
		if err != nil {
			return nil, err
		}
		if len(hdr) == 0 || hdr[0] != '$' {
			return nil, fmt.Errorf("%w: expected a bulk string, got %q", errProtocol, hdr)
		}
		size, err := strconv.ParseInt(string(hdr[1:]), 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("%w: bad bulk length %q", errProtocol, hdr)
		}
		if r.maxBulk > 0 && size > r.maxBulk {
			return nil, fmt.Errorf("%w: the master sent a %d-byte argument of a %s command, over the limit of %d: raise source.max_bulk_bytes if such values are real (Redis's own limit is proto-max-bulk-len)",
				ErrTooLarge, size, commandName(args), r.maxBulk)
		}
		arg, err := r.readBulk(size)
		if err != nil {
			return nil, err
		}
		args = append(args, arg)
	}
	return args, nil
}

// readBulk reads a bulk string of size bytes and its CRLF, allocating as
// the bytes arrive.
func (r *respReader) readBulk(size int64) ([]byte, error) {
	var buf []byte
	if size+2 <= smallBulk {
		if cap(r.slab)-len(r.slab) < int(size)+2 {
			r.slab = make([]byte, 0, slabSize)
		}
		n := len(r.slab)
		r.slab = r.slab[:n+int(size)+2]
		buf = r.slab[n : n+int(size)+2 : n+int(size)+2]
		if _, err := io.ReadFull(r.br, buf); err != nil {
			return nil, err
		}
	} else if size+2 <= preallocBulk {
		buf = make([]byte, size+2)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			return nil, err
		}
	} else {
		var b bytes.Buffer
		b.Grow(preallocBulk)
		if _, err := io.CopyN(&b, r.br, size+2); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		buf = b.Bytes()
	}
	if buf[size] != '\r' || buf[size+1] != '\n' {
		return nil, fmt.Errorf("%w: bulk string of %d bytes not followed by CRLF", errProtocol, size)
	}
	r.n += size + 2
	return buf[:size:size], nil
}

// commandName names the command whose first arguments are args, for
// messages (the name only: the rest may be data).
func commandName(args [][]byte) string {
	if len(args) == 0 {
		return "(unnamed)"
	}
	name := args[0]
	if len(name) > 32 {
		name = name[:32]
	}
	return strconv.Quote(string(bytes.ToUpper(name)))
}

// eofMarkReader yields the bytes of a diskless RDB transfer
// ("$EOF:<mark>" … <mark>), without the 40-byte end mark. It may read
// ahead freely: the master sends nothing after the mark until the replica
// acknowledges with REPLCONF ACK.
type eofMarkReader struct {
	r       io.Reader
	mark    []byte
	pending []byte // read, not yet returned; the last len(mark) may be the mark
	done    bool
	tmp     []byte
}

func (e *eofMarkReader) Read(p []byte) (int, error) {
	for {
		keep := len(e.mark)
		if e.done {
			keep = 0
		}
		if len(e.pending) > keep {
			n := copy(p, e.pending[:len(e.pending)-keep])
			e.pending = e.pending[n:]
			return n, nil
		}
		if e.done {
			return 0, io.EOF
		}
		if e.tmp == nil {
			e.tmp = make([]byte, 64<<10)
		}
		n, err := e.r.Read(e.tmp)
		e.pending = append(e.pending[:len(e.pending):len(e.pending)], e.tmp[:n]...)
		if len(e.pending) >= len(e.mark) && bytes.HasSuffix(e.pending, e.mark) {
			e.pending = e.pending[:len(e.pending)-len(e.mark)]
			e.done = true
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}
