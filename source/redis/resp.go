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
}

// errProtocol marks a malformed stream.
var errProtocol = errors.New("redis replication protocol error")

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
	args := make([][]byte, n)
	for i := range args {
		hdr, err := r.readLine()
		if err != nil {
			return nil, err
		}
		if len(hdr) == 0 || hdr[0] != '$' {
			return nil, fmt.Errorf("%w: expected a bulk string, got %q", errProtocol, hdr)
		}
		size, err := strconv.Atoi(string(hdr[1:]))
		if err != nil || size < 0 || size > 512<<20 {
			return nil, fmt.Errorf("%w: bad bulk length %q", errProtocol, hdr)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			return nil, err
		}
		r.n += int64(size + 2)
		args[i] = buf[:size:size]
	}
	return args, nil
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
