package fs

import (
	"math/bits"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// reply is a read's data in a buffer of the daemon's own. A read is made
// on a goroutine of its own (callBound.do) that may go on after the
// request gave up; it must never write into the request's buffer, which
// go-fuse hands to the next request. go-fuse writes a reply's slices to
// the kernel and only then calls Done, which gives the buffer back: no
// copy.
type reply struct {
	buf *[]byte
	n   int
}

var (
	_ = (fuse.ReadResult)((*reply)(nil))
	_ = (interface {
		Slices() ([][]byte, fuse.Status)
	})((*reply)(nil)) // what go-fuse writes without flattening
)

// newReply returns a reply with room for n bytes.
func newReply(n int) *reply { return &reply{buf: getBuffer(n)} }

// data is the room for the reply's bytes.
func (r *reply) data(n int) []byte { return (*r.buf)[:n] }

func (r *reply) Size() int { return r.n }

func (r *reply) Bytes(buf []byte) ([]byte, fuse.Status) { return (*r.buf)[:r.n], fuse.OK }

func (r *reply) Slices() ([][]byte, fuse.Status) { return [][]byte{(*r.buf)[:r.n]}, fuse.OK }

// Done gives the buffer back; the reply must not be used after.
func (r *reply) Done() {
	putBuffer(r.buf)
	r.buf = nil
}

// Buffers come in sizes of powers of two from a page up, a pool each.
const (
	minBufferShift = 12
	maxBufferShift = 30
)

var bufferPools [maxBufferShift - minBufferShift + 1]sync.Pool

// bufferClass is the index of the smallest size class that holds n bytes.
func bufferClass(n int) int {
	if n <= 1<<minBufferShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minBufferShift
}

// getBuffer returns a buffer of at least n bytes (n at most 1 GiB).
func getBuffer(n int) *[]byte {
	c := bufferClass(n)
	if b, ok := bufferPools[c].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 1<<(c+minBufferShift))
	return &b
}

// putBuffer gives back a buffer from getBuffer.
func putBuffer(b *[]byte) {
	if b != nil {
		bufferPools[bufferClass(len(*b))].Put(b)
	}
}
