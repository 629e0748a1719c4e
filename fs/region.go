package fs

import (
	"context"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/procmem/procmem/procfs"
)

// regionFile is one memory region. Its name is its bounds, so the bounds
// never change; the permissions may (mprotect) and are re-read on stat.
type regionFile struct {
	node
	dir        *procDir
	start, end uint64

	mu    sync.Mutex
	perms procfs.Perms // as last seen in maps
}

var (
	_ = (gofs.NodeGetattrer)((*regionFile)(nil))
	_ = (gofs.NodeSetattrer)((*regionFile)(nil))
	_ = (gofs.NodeOpener)((*regionFile)(nil))
)

func (n *regionFile) stableAttr() gofs.StableAttr {
	return gofs.StableAttr{Mode: syscall.S_IFREG, Ino: inode(kindRegion, uint64(n.dir.pid), n.dir.start, n.start, n.end), Gen: n.dir.start}
}

// mode turns region permissions into file permission bits for the owner:
// r gives read, w gives write (every region is writable with --force-write,
// none on a read-only mount).
func (n *regionFile) mode(p procfs.Perms) uint32 {
	if c := n.dir.capture; c != nil {
		return c.mode // whoever may read the core may read its regions
	}
	var m uint32
	if p.Read {
		m |= 0o400
	}
	if (p.Write || n.fsys.cfg.ForceWrite) && !n.fsys.cfg.ReadOnly {
		m |= 0o200
	}
	return m
}

// fillAttr fills in the attributes, with the resident size of snap (if
// nil, none is known).
func (n *regionFile) fillAttr(ctx context.Context, a *fuse.Attr, snap *mapsSnapshot) {
	n.mu.Lock()
	perms := n.perms
	n.mu.Unlock()
	a.Mode = syscall.S_IFREG | n.mode(perms)
	a.Size = n.end - n.start
	a.Blksize = n.fsys.blockSize
	// du shows resident memory; a region with fewer blocks than its size
	// is what makes cp look for holes with SEEK_DATA.
	if snap != nil {
		a.Blocks = snap.residentBytes(ctx, n.start, n.end) / 512
	} else {
		a.Blocks = (n.end - n.start) / 512 // never read: claim nothing is sparse
	}
	a.Nlink = 1
	a.Uid, a.Gid = n.dir.ids()
	a.Ino = n.stableAttr().Ino
	setTimes(a, n.dir.time())
}

// refresh re-reads the region and returns it with the snapshot it came
// from; a region that is gone keeps its last known attributes, so fstat
// on an open file still answers.
func (n *regionFile) refresh(ctx context.Context) (procfs.Region, *mapsSnapshot, error) {
	r, snap, err := n.dir.findRegion(ctx, n.start, n.end, snapshotAge)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		n.perms = r.Perms
	}
	return r, snap, err
}

func (n *regionFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	_, snap, _ := n.refresh(ctx)
	n.fillAttr(ctx, &out.Attr, snap)
	out.SetTimeout(regionTimeout)
	return 0
}

// Setattr accepts truncation to any size and time changes and changes
// nothing, so "cp file region" and "dd of=region" (O_TRUNC) overwrite in
// place; memory is never zeroed and the size stays the region's.
func (n *regionFile) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := n.settable(in); errno != 0 {
		return errno
	}
	_, snap, _ := n.refresh(ctx)
	n.fillAttr(ctx, &out.Attr, snap)
	return 0
}

func (n *regionFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	region, _, err := n.refresh(ctx)
	switch {
	case err != nil:
		return nil, 0, toErrno(err)
	case write && n.fsys.cfg.ReadOnly:
		return nil, 0, syscall.EROFS
	case write && !region.Perms.Write && !n.fsys.cfg.ForceWrite:
		return nil, 0, syscall.EACCES
	}
	h, errno := n.dir.openHandle(ctx, write, &region)
	if errno != 0 {
		return nil, 0, errno
	}
	rh := &regionHandle{handle: h, start: n.start, end: n.end}
	if write {
		// Each write is decided when it is made: the region may have
		// become read-only, or been replaced, since this open.
		rh.writer = h.mem.RegionWriter(region)
		if n.fsys.cfg.ForceWrite {
			rh.writer.Forcing()
		}
	}
	return rh, openFlags(write), 0
}
