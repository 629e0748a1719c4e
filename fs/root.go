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
	_ = (gofs.NodeReaddirer)((*rootNode)(nil))
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
	d.fillAttr(&out.Attr)
	out.SetEntryTimeout(r.fsys.procNameTimeout())
	out.SetAttrTimeout(procTimeout)
	return r.NewInode(ctx, d, d.stableAttr()), 0
}

func (r *rootNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	pids, err := procfs.PIDs()
	if err == nil {
		pids, err = r.fsys.visible(ctx, pids)
	}
	if err != nil {
		return nil, readdirErrno(err)
	}
	entries := make([]fuse.DirEntry, 0, len(pids)+3)
	entries = append(entries, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: rootIno},
		fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: rootIno},
		fuse.DirEntry{Name: "self", Mode: syscall.S_IFLNK, Ino: inode(kindSelf)})
	for _, pid := range pids {
		p, err := procfs.Open(pid)
		if err != nil {
			continue // exited meanwhile
		}
		if !p.Zombie {
			entries = append(entries, fuse.DirEntry{Name: strconv.Itoa(pid), Mode: syscall.S_IFDIR, Ino: inode(kindProc, uint64(pid), p.StartTime)})
		}
		p.Close()
	}
	return gofs.NewListDirStream(entries), 0
}

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
