package fs

import (
	"bytes"
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

// textFile is "info" or "statm": the text procmem's info and statm verbs
// print, made when the file is opened.
type textFile struct {
	node
	dir   *procDir
	statm bool
}

var (
	_ = (gofs.NodeGetattrer)((*textFile)(nil))
	_ = (gofs.NodeSetattrer)((*textFile)(nil))
	_ = (gofs.NodeOpener)((*textFile)(nil))
)

func (t *textFile) stableAttr() gofs.StableAttr {
	kind := kindInfo
	if t.statm {
		kind = kindStatm
	}
	return gofs.StableAttr{Mode: syscall.S_IFREG, Ino: inode(kind, uint64(t.dir.pid), t.dir.start), Gen: t.dir.start}
}

// fillAttr fills the attributes with the given content size, or the size
// the content would have now when size is negative.
func (t *textFile) fillAttr(ctx context.Context, a *fuse.Attr, size int) {
	if size < 0 {
		if b, errno := t.content(ctx, snapshotAge); errno == 0 {
			size = len(b)
		}
	}
	a.Mode = syscall.S_IFREG | 0o444 // as /proc/PID/maps; Open decides
	if c := t.dir.capture; c != nil {
		a.Mode = syscall.S_IFREG | c.mode
	}
	a.Size = uint64(max(size, 0))
	a.Blksize = t.fsys.blockSize
	a.Nlink = 1
	a.Uid, a.Gid = t.dir.ids()
	a.Ino = t.stableAttr().Ino
	setTimes(a, t.dir.time())
}

// content renders the file from the process's state, as the caller may
// see it: info from a reading of maps through the caller's own fd no older
// than maxAge (one rendering for each reading), statm once the caller may
// read maps.
func (t *textFile) content(ctx context.Context, maxAge time.Duration) ([]byte, syscall.Errno) {
	snap, err := t.dir.snapshot(ctx, maxAge)
	if err != nil {
		return nil, toErrno(err)
	}
	return t.contentAfter(ctx, snap)
}

// contentAfter renders the file for a caller whose reading of maps is
// snap: info as of snap, statm as it is now.
func (t *textFile) contentAfter(ctx context.Context, snap *mapsSnapshot) ([]byte, syscall.Errno) {
	var b bytes.Buffer
	if !t.statm {
		return snap.info(), 0
	}
	s, err := readProcess(ctx, t.dir, (*procfs.Process).Statm)
	if err != nil {
		return nil, toErrno(err)
	}
	report.Statm(&b, s)
	return b.Bytes(), 0
}

func (t *textFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := f.(*textHandle); ok {
		t.fillAttr(ctx, &out.Attr, len(h.data))
		return 0
	}
	t.fillAttr(ctx, &out.Attr, -1)
	return 0
}

func (t *textFile) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return t.denied()
}

// Open renders the text once, so every read of one open file sees the
// same snapshot: of maps as they are now, read through an fd opened with
// the caller's credentials, so the check and the read are one act.
func (t *textFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, t.denied()
	}
	data, errno := t.content(ctx, 0)
	if errno != 0 {
		return nil, 0, errno
	}
	charge, err := t.fsys.account.open(ctx, 0, int64(len(data)))
	if err != nil {
		return nil, 0, toErrno(err)
	}
	return &textHandle{data: data, charge: charge}, fuse.FOPEN_DIRECT_IO, 0
}

// textHandle serves one rendering of a text file, charged to its opener:
// the info of a process with 30,000 regions is over a megabyte.
type textHandle struct {
	data   []byte
	charge *charge
}

var (
	_ = (gofs.FileReader)((*textHandle)(nil))
	_ = (gofs.FileReleaser)((*textHandle)(nil))
)

func (h *textHandle) Release(ctx context.Context) syscall.Errno {
	h.charge.release()
	return 0
}

func (h *textHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off < 0 || off >= int64(len(h.data)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(h.data[off:min(int64(len(h.data)), off+int64(len(dest)))]), 0
}
