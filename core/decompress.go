package core

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"golang.org/x/sys/unix"
)

// Compressed cores, as systemd-coredump writes them (zstd, else lz4, else
// xz): one stream without a seek table, so reading it at an address needs
// everything before it decompressed. Open decompresses it once, in one
// pass, into a sparse file (a memfd, or an unlinked file in a directory
// the user chooses), writing only the pages that hold a non-zero byte, so
// that the core's holes, and the pages of zeros the kernel wrote into the
// pipe for them, stay holes; after that every read is a pread of that
// file, at memory speed.

// compressionOf names a compressed core's format: "zstd", "lz4" or "xz";
// "" for a core that is not compressed.
func compressionOf(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case bytes.HasPrefix(magic, []byte{0x04, 0x22, 0x4d, 0x18}), bytes.HasPrefix(magic, []byte{0x02, 0x21, 0x4c, 0x18}):
		return "lz4" // the frame format, and the legacy one
	case bytes.HasPrefix(magic, xzMagic):
		return "xz"
	}
	return ""
}

// maxZstdWindow bounds the history a zstd frame may ask the decoder to
// keep: zstd --long's default (128 MiB) and more than any level uses.
const maxZstdWindow = 128 << 20

// errCut marks an error of the compressed stream itself: what came before
// it is kept, and the core is cut short there.
var errCut = errors.New("the compressed core ends early")

// decompressed is a compressed core's decompressed bytes.
type decompressed struct {
	file *os.File
	cut  error // why the stream ended early or is corrupt (the file holds what came before), or nil
}

// limits bound a decompression: the bytes of data written (0: none), and
// the size, holes included (0: none).
type limits struct{ data, size uint64 }

// decompress decompresses the core src, compressed with format, into a
// new sparse file: a memfd, or an unlinked file in dir. In a memfd the
// pages with data may take at most limit.data bytes.
func decompress(src io.Reader, format, dir string, limit limits) (decompressed, error) {
	dec, closeDec, err := decoder(src, format)
	if err != nil {
		return decompressed{}, err
	}
	defer closeDec()
	dst, err := sparseFile(dir)
	if err != nil {
		return decompressed{}, err
	}
	if dir != "" {
		limit.data = 0 // the filesystem's own space is the limit
	}
	size, err := writeSparse(dst, dec, limit)
	var cut error
	if errors.Is(err, errCut) {
		cut, err = err, nil
	}
	if err == nil {
		err = dst.Truncate(size)
	}
	if err != nil {
		dst.Close()
		return decompressed{}, err
	}
	return decompressed{readOnly(dst), cut}, nil
}

// readOnly reopens f for reading only, so that nothing handed the core
// can change it; if /proc cannot reopen it, f itself.
func readOnly(f *os.File) *os.File {
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return f
	}
	name := f.Name()
	f.Close()
	return os.NewFile(uintptr(fd), name)
}

// decoder returns a reader of what src decompresses to.
func decoder(src io.Reader, format string) (io.Reader, func(), error) {
	switch format {
	case "zstd":
		d, err := zstd.NewReader(src, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(0))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return d, d.Close, nil
	case "lz4":
		return lz4.NewReader(src), func() {}, nil
	case "xz":
		return newXZReader(src), func() {}, nil
	}
	return nil, nil, fmt.Errorf("unknown compression %q", format)
}

// sparseFile makes the file a core is decompressed into: a memfd, or with
// dir a file without a name there (O_TMPFILE), which nothing needs to
// remove.
func sparseFile(dir string) (*os.File, error) {
	if dir == "" {
		fd, err := unix.MemfdCreate("procmem-core", unix.MFD_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("memfd_create: %w", err)
		}
		return os.NewFile(uintptr(fd), "memfd:procmem-core"), nil
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot hold an unlinked file to decompress the core into: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), dir+"/(decompressed core)"), nil
}

// writeSparse copies r into dst from offset 0, writing only the pages with
// a non-zero byte, within limit. It returns how many bytes r gave; an
// error of r after some bytes is wrapped with errCut, unless r refused
// the stream (errUnsupported).
func writeSparse(dst *os.File, r io.Reader, limit limits) (int64, error) {
	w := &sparseWriter{dst: dst, limit: limit}
	// The decoders' own WriteTo hands over their buffers: no copy.
	_, err := io.CopyBuffer(w, r, make([]byte, 1<<20))
	var werr writeError
	switch {
	case err == nil:
		return w.off, w.flush()
	case errors.As(err, &werr):
		return w.off, werr.err
	case w.off == 0 || errors.Is(err, errUnsupported):
		return w.off, fmt.Errorf("decompressing: %w", err)
	}
	if err := w.flush(); err != nil {
		return w.off, err
	}
	return w.off, fmt.Errorf("%w after %d bytes: %v", errCut, w.off, err)
}

// sparseWriter writes a stream into a file from offset 0, page by page,
// only the pages that hold a non-zero byte.
type sparseWriter struct {
	dst     *os.File
	limit   limits
	off     int64  // the stream's bytes so far
	written uint64 // of them, in pages with data
	partial []byte // a page begun and not finished, at off-len(partial)
}

// writeError is an error of the file written, not of the stream.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }

func (w *sparseWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.limit.size > 0 && uint64(w.off)+uint64(n) > w.limit.size {
		return 0, writeError{fmt.Errorf("the core decompresses to more than %s", sizeString(w.limit.size))}
	}
	if len(w.partial) > 0 {
		take := min(pageSize-len(w.partial), len(p))
		w.partial = append(w.partial, p[:take]...)
		p = p[take:]
		w.off += int64(take)
		if len(w.partial) < pageSize {
			return n, nil
		}
		if err := w.writePages(w.partial, w.off-pageSize); err != nil {
			return 0, writeError{err}
		}
		w.partial = w.partial[:0]
	}
	whole := len(p) / pageSize * pageSize
	if err := w.writePages(p[:whole], w.off); err != nil {
		return 0, writeError{err}
	}
	w.off += int64(len(p))
	w.partial = append(w.partial, p[whole:]...)
	return n, nil
}

// writePages writes the pages of b that hold data, b being the stream's
// bytes from off.
func (w *sparseWriter) writePages(b []byte, off int64) error {
	for start, end := range dataRuns(b) {
		w.written += uint64(end - start)
		if w.limit.data > 0 && w.written > w.limit.data {
			return fmt.Errorf("the decompressed core holds more than %s of data, more than memory should hold: give it a directory to decompress into", sizeString(w.limit.data))
		}
		if _, err := w.dst.WriteAt(b[start:end], off+int64(start)); err != nil {
			return err
		}
	}
	return nil
}

// flush writes the last, partial page.
func (w *sparseWriter) flush() error {
	return w.writePages(w.partial, w.off-int64(len(w.partial)))
}

var zeroPage [pageSize]byte

// dataRuns yields the runs [start, end) of b's pages that hold a non-zero
// byte, merged where they touch.
func dataRuns(b []byte) func(func(int, int) bool) {
	return func(yield func(int, int) bool) {
		start := -1
		for at := 0; at < len(b); at += pageSize {
			page := b[at:min(at+pageSize, len(b))]
			zero := bytes.Equal(page, zeroPage[:len(page)])
			switch {
			case !zero && start < 0:
				start = at
			case zero && start >= 0:
				if !yield(start, at) {
					return
				}
				start = -1
			}
		}
		if start >= 0 {
			yield(start, len(b))
		}
	}
}

// sizeString writes a size in the largest binary unit it has whole.
func sizeString(n uint64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for i < len(units)-1 && n >= 1024 && n%1024 == 0 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%d %s", n, units[i])
}
