package redis

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/hdt3213/rdb/core"
	"github.com/hdt3213/rdb/model"
)

// allocated returns the bytes f allocated on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBulkLengthCapped: a declared bulk length is not memory (an 18-byte
// input declaring 512 MiB allocates next to nothing), a length over
// MaxBulkBytes is ErrTooLarge naming the command and the key to raise,
// and real bulk strings still arrive whole.
func TestBulkLengthCapped(t *testing.T) {
	read := func(input string, max int64) ([][]byte, error) {
		r := &respReader{br: bufio.NewReaderSize(strings.NewReader(input), 1<<20), maxBulk: max}
		return r.readCommand()
	}
	var err error
	n := allocated(func() { _, err = read("*1\r\n$536870912\r\n", DefaultMaxBulkBytes) })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated 512 MiB bulk: %v", err)
	}
	if n > 4<<20 {
		t.Errorf("an 18-byte input allocated %d bytes", n)
	}

	_, err = read("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n", 1<<20)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `a 2000000-byte argument of a "SET" command`) || !strings.Contains(err.Error(), "source.max_bulk_bytes") {
		t.Errorf("over the limit: %v", err)
	}

	big := bytes.Repeat([]byte("v"), 3<<20)
	args, err := read("*2\r\n$3\r\nSET\r\n$3145728\r\n"+string(big)+"\r\n", DefaultMaxBulkBytes)
	if err != nil || len(args) != 2 || !bytes.Equal(args[1], big) {
		t.Errorf("3 MiB bulk: %d args, %v", len(args), err)
	}
	if _, err := read("*1\r\n$3\r\nSETXX", DefaultMaxBulkBytes); !errors.Is(err, errProtocol) {
		t.Errorf("bulk without CRLF: %v", err)
	}
}

// rdbOf is an RDB holding one key of type typ, whose encoded value is
// value.
func rdbOf(typ byte, key string, value []byte) []byte {
	b := []byte("REDIS0010")
	b = append(b, 0xFE, 0x00) // SELECTDB 0
	b = append(b, typ, byte(len(key)))
	b = append(b, key...)
	return append(b, value...)
}

func len32(n uint32) []byte { return binary.BigEndian.AppendUint32([]byte{0x80}, n) }

// TestRDBAllocationsCapped: a string, LZF block or collection declaring
// more than the limit stops the parse with core.ErrTooLarge; lengths
// under it allocate as the bytes arrive; malformed input never panics.
func TestRDBAllocationsCapped(t *testing.T) {
	const limit = DefaultMaxBulkBytes
	for _, tc := range []struct {
		name     string
		rdb      []byte
		tooLarge bool
	}{
		{"4 GiB string", rdbOf(0, "k", len32(0xFFFFFFFF)), true},
		{"100 MiB string, 10 bytes sent", rdbOf(0, "k", append(len32(100<<20), "0123456789"...)), false},
		{"list of 2^32 elements", rdbOf(1, "l", len32(0xFFFFFFFF)), true},
		{"list of 100M elements, none sent", rdbOf(1, "l", len32(100_000_000)), false},
		{"set of 2^32 elements", rdbOf(2, "s", len32(0xFFFFFFFF)), true},
		{"LZF block claiming 100 MiB from 10 bytes", rdbOf(0, "k", append(append([]byte{0xC3, 10}, len32(100<<20)...), "0123456789"...)), false},
		{"garbage", rdbOf(0x7A, "k", bytes.Repeat([]byte{0xFF, 0x00, 0x81}, 50)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			var dec *core.Decoder
			n := allocated(func() {
				dec = core.NewDecoder(bytes.NewReader(tc.rdb)).WithMaxLength(limit)
				err = parseRDB(dec, func(model.RedisObject) bool { return true })
			})
			if err == nil {
				t.Fatal("parse succeeded")
			}
			if got := errors.Is(dec.LimitError(), core.ErrTooLarge); got != tc.tooLarge {
				t.Errorf("limit error %v (parse: %v), want ErrTooLarge %v", dec.LimitError(), err, tc.tooLarge)
			}
			if n > 8<<20 {
				t.Errorf("%d input bytes allocated %d bytes", len(tc.rdb), n)
			}
		})
	}
}
