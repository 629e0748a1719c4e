package fs

import (
	"context"
	"slices"
	"strconv"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// rootNode is the mount's top directory: "self" and one directory per
// process, like /proc.
type rootNode struct{ dirNode }

var (
	_ = (gofs.NodeLookuper)((*rootNode)(nil))
	_ = (gofs.NodeOpendirHandler)((*rootNode)(nil))
	_ = (gofs.NodeGetattrer)((*rootNode)(nil))
	_ = (gofs.NodeSetattrer)((*rootNode)(nil))
)

func newRoot(fsys *FS) *rootNode {
	r := &rootNode{}
	r.fsys = fsys
	return r
}

func (r *rootNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	setTimes(&out.Attr, r.fsys.bootTime)
	// Never changes; with default_permissions every path walk checks it.
	out.SetTimeout(stableTimeout)
	return 0
}

func (r *rootNode) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return r.denied()
}

func (r *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if r.fsys.captures != nil {
		d, ok := r.fsys.captures[name]
		if !ok {
			return nil, syscall.ENOENT
		}
		return r.procEntry(ctx, d, out), 0
	}
	if name == "self" {
		n := &selfLink{}
		n.fsys = r.fsys
		out.Mode = syscall.S_IFLNK | 0o777
		return r.NewInode(ctx, n, gofs.StableAttr{Mode: syscall.S_IFLNK, Ino: inode(kindSelf)}), 0
	}
	pid, err := strconv.Atoi(name)
	if err != nil || pid <= 0 || name != strconv.Itoa(pid) {
		return nil, syscall.ENOENT
	}
	if visible, err := r.fsys.visible(ctx, []int{pid}); err != nil || len(visible) == 0 {
		return nil, syscall.ENOENT
	}
	d, errno := r.fsys.newProcDir(pid)
	if errno != 0 {
		return nil, errno
	}
	return r.procEntry(ctx, d, out), 0
}

// procEntry answers a lookup with the directory d.
func (r *rootNode) procEntry(ctx context.Context, d *procDir, out *fuse.EntryOut) *gofs.Inode {
	d.fillAttr(&out.Attr)
	out.SetEntryTimeout(r.fsys.procNameTimeout())
	out.SetAttrTimeout(procTimeout)
	return r.NewInode(ctx, d, d.stableAttr())
}

// OpendirHandle lists the processes the caller may see, each read once:
// the lookups of a READDIRPLUS ("ls", which the kernel sends as one on a
// first listing) are answered from the listing.
func (r *rootNode) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	charge, err := r.fsys.account.open(ctx, 0, 0)
	if err != nil {
		return nil, 0, toErrno(err)
	}
	return &rootListing{root: r, charge: charge}, 0, 0
}

// rootListing is an open root directory: self and a directory per process.
type rootListing struct {
	root   *rootNode
	charge *charge

	entryStream
	procs map[string]procfs.Listed // what the listing read of each process
}

var (
	_ = (gofs.FileReaddirenter)((*rootListing)(nil))
	_ = (gofs.FileSeekdirer)((*rootListing)(nil))
	_ = (gofs.FileLookuper)((*rootListing)(nil))
	_ = (gofs.FileReleasedirer)((*rootListing)(nil))
)

// load lists the processes as they are now, or the captures served.
func (l *rootListing) load(ctx context.Context) syscall.Errno {
	fsys := l.root.fsys
	if fsys.captures != nil {
		l.loadCaptures()
		return 0
	}
	pids, err := procfs.PIDs()
	if err == nil {
		pids, err = fsys.visible(ctx, pids)
	}
	var listed []procfs.Listed
	if err == nil {
		listed, err = procfs.List(pids)
	}
	if err != nil {
		return readdirErrno(err)
	}
	if grow := int64(len(listed)+3)*entryBytes - (l.charge.bytes - minHandleBytes); grow > 0 {
		if err := l.charge.grow(0, grow); err != nil {
			return toErrno(err)
		}
	}
	entries := make([]fuse.DirEntry, 0, len(listed)+3)
	entries = append(entries, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: rootIno},
		fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: rootIno},
		fuse.DirEntry{Name: "self", Mode: syscall.S_IFLNK, Ino: inode(kindSelf)})
	procs := make(map[string]procfs.Listed, len(listed))
	for _, p := range listed {
		if p.Zombie {
			continue
		}
		name := strconv.Itoa(p.PID)
		procs[name] = p
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: inode(kindProc, uint64(p.PID), p.StartTime)})
	}
	l.procs = procs
	l.set(entries)
	return 0
}

func (l *rootListing) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	return l.readdirent(func() syscall.Errno { return l.load(ctx) })
}

// loadCaptures lists the captures served, by name.
func (l *rootListing) loadCaptures() {
	entries := []fuse.DirEntry{{Name: ".", Mode: syscall.S_IFDIR, Ino: rootIno}, {Name: "..", Mode: syscall.S_IFDIR, Ino: rootIno}}
	for name, d := range l.root.fsys.captures {
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: d.stableAttr().Ino})
	}
	sortEntries(entries[2:])
	l.procs = nil
	l.set(entries)
}

// Seekdir resumes after the entry whose Off is off; 0 rewinds, and the
// next read lists the processes anew.
func (l *rootListing) Seekdir(ctx context.Context, off uint64) syscall.Errno { return l.seekdir(off) }

// Lookup answers for an entry just listed from what the listing read of
// it; the caller may see it (the listing kept only those).
func (l *rootListing) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	l.mu.Lock()
	p, ok := l.procs[name]
	l.mu.Unlock()
	if !ok { // self, or a capture
		return l.root.Lookup(ctx, name, out)
	}
	d := &procDir{pid: p.PID, start: p.StartTime}
	d.fsys = l.root.fsys
	d.touch()
	d.owner.Store(uint64(p.UID)<<32 | uint64(p.GID))
	return l.root.procEntry(ctx, d, out), 0
}

func (l *rootListing) Releasedir(ctx context.Context, flags uint32) { l.charge.release() }

// selfLink points to the directory of the process that reads it.
type selfLink struct{ node }

var _ = (gofs.NodeReadlinker)((*selfLink)(nil))
var _ = (gofs.NodeGetattrer)((*selfLink)(nil))

func (s *selfLink) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFLNK | 0o777
	out.Nlink = 1
	setTimes(&out.Attr, s.fsys.bootTime)
	return 0
}

// Readlink answers with the caller's thread-group id: FUSE reports the
// calling thread, and a thread's directory is its process's.
func (s *selfLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	caller, ok := fuse.FromContext(ctx)
	if !ok || caller.Pid == 0 {
		return nil, syscall.ENOENT
	}
	st, err := withProcess(func() (*procfs.Process, error) { return procfs.Open(int(caller.Pid)) }, (*procfs.Process).Status)
	if err != nil {
		return nil, toErrno(err)
	}
	return []byte(strconv.Itoa(st.Tgid)), 0
}

// visible keeps the PIDs whose /proc directory the caller can see. With
// /proc mounted hidepid=2 (invisible) a user sees only its own processes
// there, and must see no more here.
func (fsys *FS) visible(ctx context.Context, pids []int) ([]int, error) {
	if !fsys.hidePIDs {
		return pids, nil
	}
	w, err := fsys.access.caller(ctx)
	if err != nil {
		return nil, err
	}
	// hidepid's gid= option exempts a group, so here the groups count too:
	// only a caller with all of the daemon's credentials sees what it sees.
	c, err := fsys.access.credentials(w)
	if err != nil {
		return nil, err
	}
	var seen []int
	look := func() error {
		var st unix.Stat_t
		for _, pid := range pids {
			// The daemon's own directory the kernel shows to all its threads.
			if pid != fsys.access.self && unix.Stat(procfs.Root+"/"+strconv.Itoa(pid), &st) == nil {
				seen = append(seen, pid)
			}
		}
		return nil
	}
	switch {
	case c == fsys.access.daemon:
		look()
		if slices.Contains(pids, fsys.access.self) {
			seen = append(seen, fsys.access.self)
			slices.Sort(seen)
		}
	case !fsys.access.canSwitch, c.userNS != fsys.access.daemon.userNS:
		return nil, syscall.EACCES
	default:
		err = runAs(c, fsys.access.daemon, look)
	}
	return seen, err
}

// procNameTimeout is how long the kernel may answer for a process
// directory's name without asking. Under hidepid with other users let in,
// not at all: its cache answers every user alike.
func (fsys *FS) procNameTimeout() time.Duration {
	if fsys.hidePIDs && fsys.cfg.AllowOther {
		return 0
	}
	return procTimeout
}
