package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// memFile is "mem": the process's whole address space as one file, where
// the offset is the address, as tools that address memory by address
// (radare2, strings -t x, xxd -s, scripts) want it. Its size is the end of
// the highest region (above it only [vsyscall], out of /proc/PID/mem's
// reach); the gaps between regions are holes that read as zeros. It is a
// view of the memory the region files show, and so it is not listed: a
// recursive tool (grep -r, tar, cp -r, du, yara -r) of a process directory
// sees every byte once, in the region files. It is opened by name.
type memFile struct {
	node
	dir *procDir
}

var (
	_ = (gofs.NodeGetattrer)((*memFile)(nil))
	_ = (gofs.NodeSetattrer)((*memFile)(nil))
	_ = (gofs.NodeOpener)((*memFile)(nil))
)

func (n *memFile) stableAttr() gofs.StableAttr {
	return gofs.StableAttr{Mode: syscall.S_IFREG, Ino: inode(kindMem, uint64(n.dir.pid), n.dir.start), Gen: n.dir.start}
}

// spaceEnd is the end of the highest region /proc/PID/mem can reach: the
// size of mem.
func spaceEnd(regions []procfs.Region) uint64 {
	for i := len(regions) - 1; i >= 0; i-- {
		if regions[i].End <= memory.MaxAddress {
			return regions[i].End
		}
	}
	return 0
}

// fillAttr fills the attributes from a reading of maps: the size is the
// end of the address space, the blocks the resident memory of all of it.
func (n *memFile) fillAttr(ctx context.Context, a *fuse.Attr, snap *mapsSnapshot) {
	a.Mode = syscall.S_IFREG | 0o600
	if n.fsys.cfg.ReadOnly {
		a.Mode = syscall.S_IFREG | 0o400
	}
	if c := n.dir.capture; c != nil {
		a.Mode = syscall.S_IFREG | c.mode
	}
	a.Size = spaceEnd(snap.regions)
	a.Blksize = n.fsys.blockSize
	for _, r := range snap.regions {
		a.Blocks += snap.residentBytes(ctx, r.Start, r.End) / 512
	}
	a.Nlink = 1
	a.Uid, a.Gid = n.dir.ids()
	a.Ino = n.stableAttr().Ino
	setTimes(a, n.dir.time())
}

func (n *memFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	snap, err := n.dir.snapshot(ctx, snapshotAge)
	if err != nil {
		return toErrno(err)
	}
	n.fillAttr(ctx, &out.Attr, snap)
	return 0
}

// Setattr accepts truncation and time changes and changes nothing, as a
// region file does.
func (n *memFile) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := n.settable(in); errno != 0 {
		return errno
	}
	return n.Getattr(ctx, f, out)
}

// Open opens the memory with the caller's credentials, as a region file
// does; what a write may change is decided per write, by the regions it
// lands in.
func (n *memFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if write && n.fsys.cfg.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	h, errno := n.dir.openHandle(ctx, write, nil)
	if errno != 0 {
		return nil, 0, errno
	}
	return &spaceHandle{handle: h, dir: n.dir, write: write}, openFlags(write), 0
}

// spaceHandle is an open mem. Each request takes the regions from a
// reading of maps no older than snapshotAge, through the maps fd the
// handle's open opened with the caller's credentials beside mem: bound to
// the same address space, and needing no caller, so a write back from a
// shared mapping (which the kernel sends without one) is decided as the
// open was.
type spaceHandle struct {
	*handle
	dir   *procDir
	write bool
}

var (
	_ = (gofs.FileReader)((*spaceHandle)(nil))
	_ = (gofs.FileWriter)((*spaceHandle)(nil))
	_ = (gofs.FileLseeker)((*spaceHandle)(nil))
)

// span is a request on mem: the regions it reads across, and the end of
// the space.
type span struct {
	regions []procfs.Region
	end     uint64
}

// regions reads the regions as they are now (no older than snapshotAge),
// within the bound: reading maps waits on the process.
func (h *spaceHandle) regions(ctx context.Context) (span, error) {
	return handleCall(ctx, h.handle, func() (span, error) {
		regions, err := h.mem.Regions(snapshotAge)
		return span{regions, spaceEnd(regions)}, err
	}, nil)
}

// Read reads the memory at address off: the regions' memory as their
// files read it, zeros in between; EOF at the end of the space or once
// the process is gone.
func (h *spaceHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	sp, err := h.regions(ctx)
	if memory.Classify(err) == memory.Gone {
		return fuse.ReadResultData(nil), 0 // like /proc/PID/mem: EOF
	}
	if err != nil {
		return nil, toErrno(err)
	}
	if off < 0 || uint64(off) >= sp.end {
		return fuse.ReadResultData(nil), 0
	}
	n := int(min(uint64(len(dest)), sp.end-uint64(off)))
	return h.read(ctx, n, func(b []byte) (int, error) { return h.mem.ReadSpan(sp.regions, b, uint64(off)) })
}

// Write writes memory at address off, only where the process maps memory
// at the moment of the write: all of it must be mapped (EIO, nothing
// written, if not) and writable unless the mount forces writes (EACCES).
// A write at or past the end of the space fails with ENOSPC, one crossing
// it is shortened.
func (h *spaceHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if !h.write {
		return 0, syscall.EBADF
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if len(data) == 0 {
		return 0, 0
	}
	sp, err := h.regions(ctx)
	if err != nil {
		return 0, writeErrno(err)
	}
	if uint64(off) >= sp.end {
		return 0, syscall.ENOSPC
	}
	data = data[:min(uint64(len(data)), sp.end-uint64(off))]
	force := h.dir.fsys.cfg.ForceWrite
	return h.handle.write(ctx, data, func(b []byte) (int, error) { return h.mem.WriteSpan(b, uint64(off), force) })
}

// Lseek answers SEEK_DATA and SEEK_HOLE across the regions; the gaps
// between them are holes.
func (h *spaceHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	if whence != seekData && whence != seekHole {
		return 0, syscall.EINVAL
	}
	sp, err := h.regions(ctx)
	if err != nil {
		return 0, toErrno(err)
	}
	if off >= sp.end {
		return 0, syscall.ENXIO
	}
	return h.seek(ctx, func() (uint64, bool, error) { return h.mem.SeekSpan(sp.regions, off, sp.end, whence == seekHole) })
}
