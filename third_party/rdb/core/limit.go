package core

// Hamal's patch: a bound on what a declared length may allocate
// (third_party/rdb/README.md).

import (
	"errors"
	"fmt"
)

// ErrTooLarge is the error of a string, LZF block or collection whose
// declared length is above the decoder's limit (WithMaxLength).
var ErrTooLarge = errors.New("rdb: declared length above the limit")

// WithMaxLength bounds declared lengths: a string or LZF block longer than
// n bytes, or a collection of more than n elements, stops the parse with
// an error wrapping ErrTooLarge. 0 means no bound.
func (dec *Decoder) WithMaxLength(n uint64) *Decoder {
	dec.maxLength = n
	return dec
}

// LimitError returns the limit the parse stopped on, nil if none.
func (dec *Decoder) LimitError() error { return dec.limitErr }

// checkLength enforces WithMaxLength on n, a declared length of what.
func (dec *Decoder) checkLength(n uint64, what string) error {
	if dec.maxLength > 0 && n > dec.maxLength {
		dec.limitErr = fmt.Errorf("%w: a %s declares %d, the limit is %d", ErrTooLarge, what, n, dec.maxLength)
		return dec.limitErr
	}
	return nil
}

// capHint is the capacity to preallocate for n declared elements: memory
// follows the elements read, not the count a stream claims.
func capHint(n uint64) int {
	if n > 1024 {
		return 1024
	}
	return int(n)
}

// bigString is the length above which a string is read as it arrives
// rather than allocated at once.
const bigString = 1 << 20

// maxLZFRatio bounds an LZF block's decompressed length by its compressed
// length: a back reference of at most 264 bytes takes 3 bytes.
const maxLZFRatio = 264
