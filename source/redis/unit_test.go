package redis

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/hdt3213/rdb/core"
	"github.com/hdt3213/rdb/model"

	"github.com/hamal-replication/hamal/test/harness"
)

// moduleRDB is a hand-made RDB holding one key of a module type, as a
// server with a module loaded writes it (type 7, module id, opcode EOF).
func moduleRDB(key, moduleName string) []byte {
	const cset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var id uint64
	for _, c := range []byte(moduleName) {
		id = id<<6 | uint64(strings.IndexByte(cset, c))
	}
	id = id<<10 | 1 // encoding version 1
	b := []byte("REDIS0010")
	b = append(b, 0xFE, 0x00) // SELECTDB 0
	b = append(b, 7, byte(len(key)))
	b = append(b, key...)
	b = append(b, 0x81) // 64-bit length: the module id
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, 0x00)                         // module opcode EOF
	b = append(b, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0) // EOF, no checksum
	return b
}

func TestModuleTypeKeyIsAClearError(t *testing.T) {
	var cbErr error
	err := core.NewDecoder(bytes.NewReader(moduleRDB("geo:idx", "hamaltest"))).Parse(func(obj model.RedisObject) bool {
		_, cbErr = objectCommands(obj)
		return cbErr == nil
	})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if cbErr == nil || !strings.Contains(cbErr.Error(), `"geo:idx"`) || !strings.Contains(cbErr.Error(), `module type "hamaltest"`) {
		t.Fatalf("want an error naming the key and module type, got %v", cbErr)
	}
}

func TestEOFMarkReader(t *testing.T) {
	mark := bytes.Repeat([]byte("m"), 40)
	payload := bytes.Repeat([]byte("0123456789"), 10000)
	for _, name := range []string{"whole", "one byte at a time"} {
		var r io.Reader = bytes.NewReader(append(append([]byte(nil), payload...), mark...))
		if name != "whole" {
			r = iotest.OneByteReader(r)
		}
		got, err := io.ReadAll(&eofMarkReader{r: r, mark: mark})
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("%s: got %d bytes, err %v; want %d bytes", name, len(got), err, len(payload))
		}
	}
	_, err := io.ReadAll(&eofMarkReader{r: bytes.NewReader(payload), mark: mark})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated transfer: %v, want unexpected EOF", err)
	}
}

func TestCommandKeys(t *testing.T) {
	r := harness.RedisServer(t, harness.RedisOptions{})
	c := r.Client()
	defer c.Close()
	cmds, err := LoadCommands(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cmd  string
		keys string // space-separated; "-" for a barrier
	}{
		{"SET k v", "k"},
		{"set k v px 10", "k"},
		{"MSET a 1 b 2", "a b"},
		{"DEL a b c", "a b c"},
		{"RENAME a b", "a b"},
		{"PEXPIREAT k 100", "k"},
		{"XGROUP CREATE s g $", "s"},
		{"XGROUP SETID s g 0", "s"},
		{"ZUNIONSTORE d 2 a b WEIGHTS 1 2", "d a b"},
		{"EVAL return 2 a b x", "a b"},
		{"EVAL return 0", "-"},
		{"LMPOP 2 a b LEFT", "a b"},
		{"SORT l STORE d", "l d"},
		{"SORT l BY w_* STORE d", "-"},
		{"COPY a b", "a b"},
		{"COPY a b DB 2", "-"},
		{"MOVE a 2", "-"},
		{"SWAPDB 0 1", "-"},
		{"FLUSHALL", "-"},
		{"PUBLISH ch m", "-"},
		{"NOSUCHCOMMAND k", "-"},
	}
	for _, tc := range cases {
		t.Run(tc.cmd, func(t *testing.T) {
			var args [][]byte
			for _, f := range strings.Fields(tc.cmd) {
				args = append(args, []byte(f))
			}
			keys, ok := cmds.Keys(args)
			got := "-"
			if ok {
				got = string(bytes.Join(keys, []byte(" ")))
			}
			if got != tc.keys {
				t.Errorf("keys = %q, want %q", got, tc.keys)
			}
		})
	}
}
