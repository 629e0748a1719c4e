package fs

import (
	"context"
	"runtime"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// handle is an open file of a process's memory (a region file, mem): a
// reader of the address space it was opened on, with the caller's rights.
//
// Every call into the process runs within the filesystem's bound
// (callBound): a call the request gave up on may go on after the file is
// released, so the files are closed when the last call is done.
type handle struct {
	opened
	charge *charge // what it holds, charged to its user: the user its calls count as too
	bound  *callBound
	key    procKey
	users  atomic.Int32 // the open file and each call in flight
}

// regionHandle is an open region file. It never reads or writes outside
// [start, end).
type regionHandle struct {
	*handle
	writer     *memory.Writer // nil unless opened for writing
	start, end uint64
}

// opened is what an open of a process's memory opens: its memory, and a
// region of it for a region file.
type opened struct {
	mem    *memory.Reader
	region *memory.Region // nil for mem
}

func (o opened) close() {
	if o.region != nil {
		o.region.Close()
	}
	if o.mem != nil {
		o.mem.Close()
	}
}

// openHandle opens the memory of the process of d with the caller's
// credentials (for writing too if write is set), and with region the
// region in it that a region file reads, within the bound on calls.
func (d *procDir) openHandle(ctx context.Context, write bool, region *procfs.Region) (*handle, syscall.Errno) {
	fsys := d.fsys
	// The caller is learnt here: the call may outlive the request, whose
	// context go-fuse then hands to another.
	w, err := fsys.access.caller(ctx)
	if err != nil {
		return nil, toErrno(err)
	}
	fds := fdsSpace
	if region != nil {
		fds = fdsRegion
	}
	if d.capture != nil {
		if write {
			return nil, syscall.EROFS
		}
		fds = 0 // a capture's reader holds the capture's descriptors, opened once
	}
	charge, err := fsys.account.open(ctx, fds, 0)
	if err != nil {
		return nil, toErrno(err)
	}
	o, err := do(ctx, fsys.bound, d.key(), func() (opened, error) {
		if d.capture != nil {
			o := opened{mem: d.capture.reader()}
			if region != nil {
				o.region = o.mem.Region(*region)
			}
			return o, nil
		}
		p, err := d.pin()
		if err != nil {
			return opened{}, err
		}
		defer p.Close()
		rd, err := memory.Open(p, fsys.access.opener(w, p.PID), write)
		if err != nil {
			return opened{}, err
		}
		rd.Avoid(fsys.ownDevice())
		rd.SetParallel(runtime.GOMAXPROCS(0))
		o := opened{mem: rd}
		if region != nil {
			o.region = rd.Region(*region)
		}
		return o, nil
	}, opened.close)
	if err != nil {
		charge.release()
		return nil, toErrno(err)
	}
	h := &handle{opened: o, charge: charge, bound: fsys.bound, key: d.key()}
	h.users.Store(1)
	return h, 0
}

// openFlags are the flags of an open memory file: every read and write
// reaches the daemon.
func openFlags(write bool) uint32 {
	if write {
		return fuse.FOPEN_DIRECT_IO | fuse.FOPEN_PARALLEL_DIRECT_WRITES
	}
	return fuse.FOPEN_DIRECT_IO
}

// handleCall runs fn on the handle's files within the bound (see run).
func handleCall[T any](ctx context.Context, h *handle, fn func() (T, error), discard func(T)) (T, error) {
	t, err := h.bound.enter(ctx, h.key, h.charge.uid)
	if err != nil {
		var zero T
		return zero, err
	}
	h.users.Add(1)
	return run(ctx, t, func() (T, error) {
		defer h.done()
		return fn()
	}, discard)
}

// done ends a use of the handle's files; the last one closes them.
func (h *handle) done() {
	if h.users.Add(-1) == 0 {
		h.opened.close()
	}
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
	return h.read(ctx, n, func(b []byte) (int, error) { return h.region.ReadAt(b, addr) })
}

// read answers a read of n bytes that fill reads, within the bound: like
// /proc/PID/mem, EOF once the process is gone.
func (h *handle) read(ctx context.Context, n int, fill func([]byte) (int, error)) (fuse.ReadResult, syscall.Errno) {
	r, err := handleCall(ctx, h, func() (*reply, error) {
		r := newReply(n)
		var err error
		r.n, err = fill(r.data(n))
		return r, err
	}, (*reply).Done)
	if err != nil {
		if r != nil {
			r.Done()
		}
		if memory.Classify(err) == memory.Gone {
			return fuse.ReadResultData(nil), 0 // like /proc/PID/mem: EOF
		}
		return nil, toErrno(err)
	}
	return r, 0
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
	at, errno := h.seek(ctx, func() (uint64, bool, error) { return h.region.Seek(h.start+off, whence == seekHole) })
	return at - h.start, errno
}

// seek answers an lseek with what find finds, within the bound: ENXIO if
// there is no data left.
func (h *handle) seek(ctx context.Context, find func() (at uint64, ok bool, err error)) (uint64, syscall.Errno) {
	type found struct {
		at uint64
		ok bool
	}
	f, err := handleCall(ctx, h, func() (found, error) {
		at, ok, err := find()
		return found{at, ok}, err
	}, nil)
	switch {
	case err != nil:
		return 0, toErrno(err)
	case !f.ok:
		return 0, syscall.ENXIO
	}
	return f.at, 0
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
	if h.writer == nil {
		return 0, syscall.EBADF
	}
	return h.write(ctx, data[:n], func(b []byte) (int, error) { return h.writer.Write(b, addr) })
}

// write answers a write of data that put writes, within the bound.
// go-fuse reuses data once Write returns, and the write may go on after
// that (if the request gives up on it): put writes a copy.
func (h *handle) write(ctx context.Context, data []byte, put func([]byte) (int, error)) (uint32, syscall.Errno) {
	buf := getBuffer(len(data))
	copy(*buf, data)
	got, err := handleCall(ctx, h, func() (int, error) {
		defer putBuffer(buf)
		return put((*buf)[:len(data)])
	}, nil)
	if err != nil {
		return 0, writeErrno(err)
	}
	return uint32(got), 0
}

// Fsync succeeds: writes to /proc/PID/mem are in memory when they return.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

func (h *handle) Flush(ctx context.Context) syscall.Errno { return 0 }

// Release closes the files once no call uses them. Closing may wait too
// (a file on a hung filesystem is flushed), so it is one more call.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.charge.release()
	if h.users.Add(-1) != 0 {
		return 0 // the last call closes them
	}
	t, err := h.bound.enter(ctx, h.key, h.charge.uid)
	if err != nil { // the process is stuck: the files must be closed all the same
		go h.opened.close()
		return 0
	}
	run(ctx, t, func() (struct{}, error) { h.opened.close(); return struct{}{}, nil }, nil)
	return 0
}
