package fs

import (
	"context"
	"sort"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// regionLink is a symlink named after a pseudo-region ("heap" for [heap])
// that points to that region's file. It is resolved on every readlink, so
// it follows the region as it grows and is renamed.
type regionLink struct {
	node
	dir  *procDir
	name string
}

var (
	_ = (gofs.NodeReadlinker)((*regionLink)(nil))
	_ = (gofs.NodeGetattrer)((*regionLink)(nil))
)

func (l *regionLink) stableAttr() gofs.StableAttr {
	return gofs.StableAttr{Mode: syscall.S_IFLNK, Ino: inodeName(kindLink, l.dir.pid, l.dir.start, l.name), Gen: l.dir.start}
}

func (l *regionLink) fillAttr(a *fuse.Attr) {
	a.Mode = syscall.S_IFLNK | 0o777
	a.Size = uint64(len("000000000000-000000000000"))
	a.Nlink = 1
	a.Uid, a.Gid = l.dir.ids()
	a.Ino = l.stableAttr().Ino
	setTimes(a, l.dir.time())
}

func (l *regionLink) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	l.fillAttr(&out.Attr)
	return 0
}

// Readlink is asked on every resolution (the kernel does not cache
// symlinks here), so it checks the caller each time, like Lookup: findLink
// reads the caller's reading of maps.
func (l *regionLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	ctx, err := l.fsys.access.withCaller(ctx)
	if err != nil {
		return nil, toErrno(err)
	}
	r, err := l.dir.findLink(ctx, l.name)
	if err != nil {
		return nil, toErrno(err)
	}
	return []byte(r.Name()), 0
}

func sortEntries(entries []fuse.DirEntry) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
}
