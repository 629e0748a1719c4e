package scan

import (
	"errors"
	"io"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Set files are written and read with O_DIRECT where the filesystem takes
// it: a snapshot of a GiB then costs the kernel no copy into the page
// cache and leaves none behind (on ext4 that copy took more CPU time than
// compressing the frames), and the disk works while the cores compress.
// Where O_DIRECT is refused (tmpfs before Linux 6.6, some FUSE
// filesystems), the file is written and read as any other.

// directBlock is the alignment O_DIRECT needs: of buffers, offsets and
// lengths (the largest logical block size in use).
const directBlock = 4096

// directBuf is how much is written or read at a time.
const directBuf = 4 << 20

// aligned returns n bytes whose start is a multiple of directBlock: Go
// does not move what it allocates on the heap.
func aligned(n int) []byte {
	b := make([]byte, n+directBlock)
	skip := (directBlock - int(uintptr(unsafe.Pointer(&b[0]))%directBlock)) % directBlock
	return b[skip : skip+n : skip+n]
}

// setDirect turns O_DIRECT on for f, and reports whether it could.
func setDirect(f *os.File, on bool) bool {
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return false
	}
	if on {
		flags |= unix.O_DIRECT
	} else {
		flags &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, flags)
	return err == nil
}

// directWriter writes a file from its start through an aligned buffer.
type directWriter struct {
	f      *os.File
	buf    []byte
	n      int   // bytes in buf
	off    int64 // where buf goes in the file
	direct bool
}

func newDirectWriter(f *os.File) *directWriter {
	return &directWriter{f: f, buf: aligned(directBuf), direct: setDirect(f, true)}
}

func (w *directWriter) Write(b []byte) (int, error) {
	done := 0
	for len(b) > 0 {
		k := copy(w.buf[w.n:], b)
		w.n += k
		b = b[k:]
		done += k
		if w.n == len(w.buf) {
			if err := w.flush(w.n); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// flush writes the first n bytes of the buffer (n a multiple of
// directBlock while O_DIRECT is on), and keeps what is left after them.
func (w *directWriter) flush(n int) error {
	_, err := w.f.WriteAt(w.buf[:n], w.off)
	if errors.Is(err, unix.EINVAL) && w.direct {
		w.direct = false
		setDirect(w.f, false)
		_, err = w.f.WriteAt(w.buf[:n], w.off)
	}
	if err != nil {
		return err
	}
	w.off += int64(n)
	w.n = copy(w.buf, w.buf[n:w.n])
	return nil
}

// writeBlock writes the first n bytes of b, which starts on a
// directBlock boundary at the writer's position and is a whole number of
// blocks long (zeros after n), from where it lies: what is buffered goes
// first, padded to a block, and the position ends after the n bytes.
func (w *directWriter) writeBlock(b []byte, n int64) error {
	if w.n > 0 {
		if err := w.flush(w.n); err != nil {
			return err
		}
	}
	_, err := w.f.WriteAt(b, w.off)
	if errors.Is(err, unix.EINVAL) && w.direct {
		w.direct = false
		setDirect(w.f, false)
		_, err = w.f.WriteAt(b, w.off)
	}
	if err != nil {
		return err
	}
	// The block's last part, from n on, is what the next write overwrites:
	// it stays in the buffer, at the block's boundary.
	last := (n / directBlock) * directBlock
	w.off += last
	w.n = copy(w.buf, b[last:n])
	return nil
}

// close writes what is buffered: with O_DIRECT a whole block, zeros after
// the end, cut off again.
func (w *directWriter) close() error {
	size := w.off + int64(w.n)
	if w.n == 0 {
		return nil
	}
	if !w.direct {
		return w.flush(w.n)
	}
	padded := (w.n + directBlock - 1) / directBlock * directBlock
	clear(w.buf[w.n:padded])
	w.n = padded
	if err := w.flush(padded); err != nil {
		return err
	}
	return w.f.Truncate(size)
}

// directReader reads a file from its start through an aligned buffer.
type directReader struct {
	f      *os.File
	buf    []byte
	at, n  int // the unread bytes are buf[at:n]
	off    int64
	direct bool
	eof    bool
}

func newDirectReader(f *os.File) *directReader {
	return &directReader{f: f, buf: aligned(directBuf), direct: setDirect(f, true)}
}

func (r *directReader) Read(b []byte) (int, error) {
	if r.at == r.n {
		if r.eof {
			return 0, io.EOF
		}
		if err := r.fill(); err != nil {
			return 0, err
		}
		if r.n == 0 {
			return 0, io.EOF
		}
	}
	k := copy(b, r.buf[r.at:r.n])
	r.at += k
	return k, nil
}

func (r *directReader) fill() error {
	n, err := r.f.ReadAt(r.buf, r.off)
	if errors.Is(err, unix.EINVAL) && r.direct {
		r.direct = false
		setDirect(r.f, false)
		n, err = r.f.ReadAt(r.buf, r.off)
	}
	if err == io.EOF {
		r.eof, err = true, nil
	}
	r.at, r.n = 0, n
	r.off += int64(n)
	return err
}

// frameBufs are the buffers frames are built, packed and read in: a step
// reuses a few rather than allocating one a frame. Each starts on a
// directBlock boundary, so a frame built in one is written from it as it
// is, its header in front (see block).
var frameBufs sync.Pool

// getBuf returns n bytes of a buffer from the pool, or a new one.
func getBuf(n int) []byte {
	if b, ok := frameBufs.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return aligned(max(n, 64<<10))[:n]
}

func putBuf(b []byte) {
	if cap(b) > 0 {
		frameBufs.Put(&b)
	}
}
