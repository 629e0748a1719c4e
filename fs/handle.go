package fs

import (
	"context"
	"errors"
	"io"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/procmem/procmem/procfs"
)

// regionHandle is an open region file: an fd on /proc/PID/mem, bound to the
// address space it was opened on, and the region's bounds. It never reads
// or writes outside [start, end).
type regionHandle struct {
	mem        *procfs.Mem
	start, end uint64
	layout     *procfs.Layout
}

var (
	_ = (gofs.FileReader)((*regionHandle)(nil))
	_ = (gofs.FileWriter)((*regionHandle)(nil))
	_ = (gofs.FileFsyncer)((*regionHandle)(nil))
	_ = (gofs.FileFlusher)((*regionHandle)(nil))
	_ = (gofs.FileReleaser)((*regionHandle)(nil))
	_ = (gofs.FileLseeker)((*regionHandle)(nil))
)

// span bounds a transfer of n bytes at offset off to the region. It
// returns the address and the length that fit, 0 if off is at or past the
// end.
func (h *regionHandle) span(off int64, n int) (uint64, int) {
	size := h.end - h.start
	if off < 0 || uint64(off) >= size {
		return 0, 0
	}
	if left := size - uint64(off); uint64(n) > left {
		n = int(left)
	}
	return h.start + uint64(off), n
}

// Read reads live memory: bytes up to the first unreadable page, EIO if
// the read starts on one, EOF past the end or once the process is gone.
func (h *regionHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	addr, n := h.span(off, len(dest))
	if n == 0 {
		return fuse.ReadResultData(nil), 0
	}
	got, err := h.read(dest[:n], addr)
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ESRCH) {
		return fuse.ReadResultData(nil), 0
	}
	if err != nil {
		return nil, toErrno(err)
	}
	return fuse.ReadResultData(dest[:got]), 0
}

// read fills b with memory from addr: pages with data from the process,
// holes as zeros without touching it.
func (h *regionHandle) read(b []byte, addr uint64) (int, error) {
	segs, err := h.layout.Segments(addr, addr+uint64(len(b)))
	if err != nil {
		if gone(err) {
			return 0, io.EOF
		}
		return h.mem.Pread(b, addr) // the layout is a refinement; memory is the truth
	}
	// Reading nothing from the process would not notice that it is gone:
	// after an exit the file reads EOF, never zeros.
	if !procfs.HasData(segs) && h.layout.Alive() != nil {
		return 0, io.EOF
	}
	return procfs.ReadSegments(h.mem, b, addr, segs)
}

// gone reports whether an error says the address space is no more.
func gone(err error) bool {
	return errors.Is(err, syscall.ESRCH) || errors.Is(err, io.EOF)
}

// Lseek answers SEEK_DATA and SEEK_HOLE from the region's layout, so
// cp --sparse, tar -S and the like copy only the pages that hold data.
func (h *regionHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	size := h.end - h.start
	if whence != seekData && whence != seekHole {
		return 0, syscall.EINVAL
	}
	if off >= size {
		return 0, syscall.ENXIO
	}
	segs, err := h.layout.Segments(h.start+off, h.end)
	if err != nil {
		return 0, toErrno(err)
	}
	for _, s := range segs {
		if (s.Kind == procfs.Hole) == (whence == seekHole) {
			return s.Start - h.start, 0
		}
	}
	if whence == seekHole {
		return size, 0
	}
	return 0, syscall.ENXIO
}

const (
	seekData = 3
	seekHole = 4
)

// Write writes memory inside the region only: a write at or past the end
// fails with ENOSPC, one that crosses it is shortened.
func (h *regionHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	addr, n := h.span(off, len(data))
	if n == 0 {
		if len(data) == 0 {
			return 0, 0
		}
		return 0, syscall.ENOSPC
	}
	got, err := h.mem.Pwrite(data[:n], addr)
	if errors.Is(err, io.EOF) {
		return 0, syscall.ESRCH
	}
	if err != nil {
		return 0, toErrno(err)
	}
	return uint32(got), 0
}

// Fsync succeeds: writes to /proc/PID/mem are in memory when they return.
func (h *regionHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

func (h *regionHandle) Flush(ctx context.Context) syscall.Errno { return 0 }

func (h *regionHandle) Release(ctx context.Context) syscall.Errno {
	h.layout.Close()
	h.mem.Close()
	return 0
}
