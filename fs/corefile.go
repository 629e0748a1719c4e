package fs

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/core"
	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// coreFile is "core": an ELF core file of the live process (package core),
// made when it is opened and never written anywhere: gdb /proc/PID/exe
// MOUNT/PID/core. Its headers and notes are fixed at open, its memory is
// read live through the memory layer. Like mem it is a view of the memory
// the region files show, and is not listed.
type coreFile struct {
	node
	dir *procDir
}

var (
	_ = (gofs.NodeGetattrer)((*coreFile)(nil))
	_ = (gofs.NodeSetattrer)((*coreFile)(nil))
	_ = (gofs.NodeOpener)((*coreFile)(nil))
)

func (n *coreFile) stableAttr() gofs.StableAttr {
	return gofs.StableAttr{Mode: syscall.S_IFREG, Ino: inode(kindCore, uint64(n.dir.pid), n.dir.start), Gen: n.dir.start}
}

// fillAttr fills the attributes of a core of the given size: read-only,
// its blocks those of the resident memory and the headers.
func (n *coreFile) fillAttr(ctx context.Context, a *fuse.Attr, size uint64, snap *mapsSnapshot) {
	a.Mode = syscall.S_IFREG | 0o400
	a.Size = size
	a.Blksize = n.fsys.blockSize
	a.Blocks = 8 // the headers and notes
	for _, r := range snap.regions {
		a.Blocks += snap.residentBytes(ctx, r.Start, r.End) / 512
	}
	a.Blocks = min(a.Blocks, size/512)
	a.Nlink = 1
	a.Uid, a.Gid = n.dir.ids()
	a.Ino = n.stableAttr().Ino
	setTimes(a, n.dir.time())
}

func (n *coreFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return n.attr(ctx, f, &out.Attr)
}

// attr tells an open core's size, or else builds the core to learn it.
func (n *coreFile) attr(ctx context.Context, f gofs.FileHandle, a *fuse.Attr) syscall.Errno {
	snap, err := n.dir.snapshot(ctx, snapshotAge)
	if err != nil {
		return toErrno(err)
	}
	if c := n.dir.capture; c != nil {
		n.fillAttr(ctx, a, c.c.Size(), snap)
		a.Mode = syscall.S_IFREG | c.mode
		return 0
	}
	if h, ok := f.(*coreHandle); ok {
		n.fillAttr(ctx, a, h.image.Size(), snap)
		return 0
	}
	im, err := n.built(ctx)
	if err != nil {
		return toErrno(err)
	}
	n.fillAttr(ctx, a, im.Size(), snap)
	return 0
}

// built returns the core built for the last stat if it is younger than
// snapshotAge, or builds it anew with the daemon's rights: a lookup, the
// stat of ls -l and an open right after cost one build. Only its size is
// told from it, and an open takes it only for the address space the
// caller's mem fd proves.
func (n *coreFile) built(ctx context.Context) (*core.Image, error) {
	d := n.dir
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	return fresh(ctx, d, &d.core, snapshotAge, func(p *procfs.Process) (*core.Image, error) {
		rd, err := memory.Open(p, memory.Self, false)
		if err != nil {
			return nil, err
		}
		defer rd.Close()
		return core.Build(p, rd)
	})
}

func (n *coreFile) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return n.denied()
}

// Open opens the memory with the caller's credentials, as a region file
// does (whoever may read /proc/PID/mem may read the core), then builds
// the core with the daemon's rights for that same address space: if the
// process execs meanwhile, the open fails as for a process that is gone.
func (n *coreFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, n.denied()
	}
	h, errno := n.dir.openHandle(ctx, false, nil)
	if errno != 0 {
		return nil, 0, errno
	}
	d := n.dir
	if c := d.capture; c != nil {
		return &coreHandle{handle: h, image: capturedCore{c.c.Data(), c.c.Size()}}, fuse.FOPEN_DIRECT_IO, 0
	}
	d.coreMu.Lock()
	recent := d.core.val
	if time.Since(d.core.at) >= snapshotAge {
		recent = nil
	}
	d.coreMu.Unlock()
	im, err := handleCall(ctx, h, func() (*core.Image, error) {
		if recent != nil && recent.Of(h.mem) {
			return recent, nil
		}
		p, err := d.pin()
		if err != nil {
			return nil, err
		}
		defer p.Close()
		return core.Build(p, h.mem)
	}, nil)
	if err == nil {
		err = h.charge.grow(0, im.Footprint())
	}
	if err != nil {
		h.Release(ctx)
		return nil, 0, toErrno(err)
	}
	return &coreHandle{handle: h, image: im}, fuse.FOPEN_DIRECT_IO, 0
}

// coreHandle is an open core.
type coreHandle struct {
	*handle
	image coreContent
}

// coreContent is what an open core reads: the image built of a live
// process, or the bytes of a captured core.
type coreContent interface {
	Size() uint64
	ReadAt(rd *memory.Reader, b []byte, off uint64) (int, error)
	Seek(rd *memory.Reader, off uint64, hole bool) (uint64, bool, error)
}

// capturedCore is a capture's core file itself, decompressed: its data
// file, whose holes are its own.
type capturedCore struct {
	data *os.File
	size uint64
}

func (c capturedCore) Size() uint64 { return c.size }

func (c capturedCore) ReadAt(_ *memory.Reader, b []byte, off uint64) (int, error) {
	n, err := c.data.ReadAt(b[:min(uint64(len(b)), c.size-off)], int64(off))
	if n > 0 || errors.Is(err, io.EOF) {
		return n, nil
	}
	return n, err
}

func (c capturedCore) Seek(_ *memory.Reader, off uint64, hole bool) (uint64, bool, error) {
	whence := unix.SEEK_DATA
	if hole {
		whence = unix.SEEK_HOLE
	}
	at, err := unix.Seek(int(c.data.Fd()), int64(off), whence)
	switch {
	case errors.Is(err, unix.ENXIO):
		if hole {
			return c.size, true, nil
		}
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return min(uint64(at), c.size), true, nil
}

var (
	_ = (gofs.FileReader)((*coreHandle)(nil))
	_ = (gofs.FileLseeker)((*coreHandle)(nil))
)

func (h *coreHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off < 0 || uint64(off) >= h.image.Size() {
		return fuse.ReadResultData(nil), 0
	}
	n := int(min(uint64(len(dest)), h.image.Size()-uint64(off)))
	return h.read(ctx, n, func(b []byte) (int, error) { return h.image.ReadAt(h.mem, b, uint64(off)) })
}

// Lseek answers SEEK_DATA and SEEK_HOLE: the headers are data, the memory
// has the holes its regions have.
func (h *coreHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	if whence != seekData && whence != seekHole {
		return 0, syscall.EINVAL
	}
	if off >= h.image.Size() {
		return 0, syscall.ENXIO
	}
	return h.seek(ctx, func() (uint64, bool, error) { return h.image.Seek(h.mem, off, whence == seekHole) })
}
