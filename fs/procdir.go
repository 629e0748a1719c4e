package fs

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/procmem/procmem/procfs"
)

// procDir is the directory of one process: a file per region, info,
// statm, and a symlink per uniquely named pseudo-region ([heap] -> heap).
type procDir struct {
	dirNode
	pid   int
	start uint64 // process start time: with pid, the process's identity
	uid   uint32 // the process's effective ids own its files
	gid   uint32

	forgotten atomic.Bool // the kernel was told to drop this directory

	mu       sync.Mutex
	regions  []procfs.Region
	loadedAt time.Time
	resident map[uint64]uint64 // resident bytes by region start, for regions

	mappings       []procfs.Mapping // smaps, for extended attributes
	mappingsLoaded time.Time
}

var (
	_ = (gofs.NodeLookuper)((*procDir)(nil))
	_ = (gofs.NodeReaddirer)((*procDir)(nil))
	_ = (gofs.NodeOpendirer)((*procDir)(nil))
	_ = (gofs.NodeGetattrer)((*procDir)(nil))
	_ = (gofs.NodeSetattrer)((*procDir)(nil))
)

// snapshotAge bounds how old a maps snapshot may be when it answers a
// lookup: a readdirplus of a process with 60,000 regions looks up every
// entry, and must not read maps 60,000 times. A name missing from the
// snapshot always triggers a fresh read, so new regions appear at once.
const snapshotAge = 100 * time.Millisecond

// newProcDir makes the directory of the thread-group leader pid.
func (fsys *FS) newProcDir(pid int) (*procDir, syscall.Errno) {
	p, err := procfs.Open(pid)
	if err != nil {
		return nil, syscall.ENOENT
	}
	defer p.Close()
	if p.Zombie {
		return nil, syscall.ENOENT
	}
	st, err := p.Status()
	if err != nil {
		return nil, syscall.ENOENT
	}
	if st.Tgid != pid {
		return nil, syscall.ENOENT // a thread: not listed, not found
	}
	d := &procDir{pid: pid, start: p.StartTime, uid: st.Uid[1], gid: st.Gid[1]}
	d.fsys = fsys
	return d, 0
}

func (d *procDir) stableAttr() gofs.StableAttr {
	return gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: inode(kindProc, uint64(d.pid), d.start), Gen: d.start}
}

func (d *procDir) fillAttr(a *fuse.Attr) {
	a.Mode = syscall.S_IFDIR | 0o500
	a.Nlink = 2
	a.Uid, a.Gid = d.uid, d.gid
	a.Ino = d.stableAttr().Ino
	setTimes(a, d.fsys.startTime(d.start))
}

// pin opens the process and checks it is still the one this directory
// was made for; a reused PID answers ENOENT.
func (d *procDir) pin() (*procfs.Process, syscall.Errno) {
	p, err := procfs.Open(d.pid)
	if err == nil && (p.StartTime != d.start || p.Zombie) {
		p.Close()
		err = syscall.ESRCH
	}
	if err != nil {
		d.forget()
		return nil, syscall.ENOENT
	}
	return p, 0
}

// forget tells the kernel, once, to drop its cached entry for this
// process's directory, so that a new process with the same PID shows up at
// once instead of when the entry times out. It must not run inside a
// request on the root (the kernel holds the directory's lock), hence the
// goroutine.
func (d *procDir) forget() {
	if d.fsys.root == nil || d.forgotten.Swap(true) {
		return
	}
	go d.fsys.root.NotifyEntry(strconv.Itoa(d.pid))
}

// alive tells whether the process is still the one of this directory.
func (d *procDir) alive() syscall.Errno {
	p, errno := d.pin()
	if errno == 0 {
		p.Close()
	}
	return errno
}

// snapshot returns the process's regions, read afresh unless the last
// read is younger than maxAge.
func (d *procDir) snapshot(maxAge time.Duration) ([]procfs.Region, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.regions != nil && time.Since(d.loadedAt) < maxAge {
		return d.regions, 0
	}
	p, errno := d.pin()
	if errno != 0 {
		return nil, errno
	}
	defer p.Close()
	regions, err := p.Maps()
	if err != nil {
		return nil, toErrno(err)
	}
	if regions == nil {
		regions = []procfs.Region{} // kernel threads have no regions
	}
	d.regions, d.loadedAt, d.resident = regions, time.Now(), nil
	return regions, 0
}

// smaps returns the process's smaps, read afresh unless the last read is
// younger than snapshotAge: getfattr -d asks for every attribute in turn.
func (d *procDir) smaps() ([]procfs.Mapping, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mappings != nil && time.Since(d.mappingsLoaded) < snapshotAge {
		return d.mappings, 0
	}
	p, errno := d.pin()
	if errno != 0 {
		return nil, errno
	}
	defer p.Close()
	mappings, err := p.Smaps()
	if err != nil {
		return nil, toErrno(err)
	}
	d.mappings, d.mappingsLoaded = mappings, time.Now()
	return mappings, 0
}

// residentBytes tells how much of a region is resident, as smaps counts
// Rss: present pages other than the zero page. One scan of the page
// tables answers for every region of the snapshot, so "ls -l" of a process
// with many regions costs one scan, not one per file.
func (d *procDir) residentBytes(start, end uint64) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.resident == nil {
		d.resident = d.scanResident()
	}
	if n, ok := d.resident[start]; ok {
		return n
	}
	return end - start // not in the snapshot: claim nothing is sparse
}

func (d *procDir) scanResident() map[uint64]uint64 {
	resident := map[uint64]uint64{}
	p, errno := d.pin()
	if errno != 0 {
		return resident
	}
	defer p.Close()
	pm, err := p.OpenPagemap()
	if err != nil {
		return resident
	}
	defer pm.Close()
	var lo, hi uint64
	for _, r := range d.regions {
		if r.End > procfs.MaxAddress/2 { // [vsyscall]: not in the page tables
			continue
		}
		if hi == 0 {
			lo = r.Start
		}
		hi = r.End
	}
	ranges, err := pm.Scan(lo, hi)
	if err != nil {
		return resident
	}
	i := 0
	for _, r := range d.regions {
		resident[r.Start] = 0
		for ; i < len(ranges) && ranges[i].Start < r.End; i++ {
			pr := ranges[i]
			if pr.Flags&procfs.PagePresent != 0 && pr.Flags&procfs.PageZero == 0 {
				resident[r.Start] += min(pr.End, r.End) - max(pr.Start, r.Start)
			}
			if pr.End > r.End {
				break // the run continues into the next region
			}
		}
	}
	return resident
}

// findRegion looks a region up by its bounds, reading maps again if the
// snapshot does not have it.
func (d *procDir) findRegion(start, end uint64) (procfs.Region, syscall.Errno) {
	for _, age := range []time.Duration{snapshotAge, 0} {
		regions, errno := d.snapshot(age)
		if errno != 0 {
			return procfs.Region{}, errno
		}
		if r, ok := searchRegion(regions, start); ok && r.End == end {
			return r, 0
		}
	}
	return procfs.Region{}, syscall.ENOENT
}

// searchRegion finds the region starting at start in a sorted list.
func searchRegion(regions []procfs.Region, start uint64) (procfs.Region, bool) {
	lo, hi := 0, len(regions)
	for lo < hi {
		mid := (lo + hi) / 2
		if regions[mid].Start < start {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(regions) && regions[lo].Start == start {
		return regions[lo], true
	}
	return procfs.Region{}, false
}

// linkName is the symlink name of a pseudo-path: [heap] -> heap,
// [anon:NAME] -> anon:NAME; "" when it cannot be a file name.
func linkName(path string) string {
	if !strings.HasPrefix(path, "[") || !strings.HasSuffix(path, "]") {
		return ""
	}
	name := path[1 : len(path)-1]
	if name == "" || name == "." || name == ".." || name == "info" || name == "statm" || strings.ContainsAny(name, "/\x00") {
		return ""
	}
	return name
}

// links maps each link name to its region, for pseudo-paths that name
// exactly one region.
func links(regions []procfs.Region) map[string]procfs.Region {
	found := map[string]procfs.Region{}
	dup := map[string]bool{}
	for _, r := range regions {
		name := linkName(r.Path)
		if name == "" {
			continue
		}
		if _, seen := found[name]; seen {
			dup[name] = true
		}
		found[name] = r
	}
	for name := range dup {
		delete(found, name)
	}
	return found
}

// findLink resolves a link name against the current maps, never a
// snapshot: a link must follow its region at once (a heap that grows gets
// a new name).
func (d *procDir) findLink(name string) (procfs.Region, syscall.Errno) {
	regions, errno := d.snapshot(0)
	if errno != 0 {
		return procfs.Region{}, errno
	}
	if r, ok := links(regions)[name]; ok {
		return r, 0
	}
	return procfs.Region{}, syscall.ENOENT
}

func (d *procDir) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := d.alive(); errno != 0 {
		return errno
	}
	d.fillAttr(&out.Attr)
	out.SetTimeout(procTimeout)
	return 0
}

func (d *procDir) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return d.denied()
}

// Opendir lets the caller list the regions only if the kernel would let
// it read /proc/PID/maps: the names reveal the layout.
func (d *procDir) Opendir(ctx context.Context) syscall.Errno {
	return d.checkLayoutAccess(ctx)
}

// Lookup answers only callers who may read the layout: that a region
// exists, or where "heap" points, is what /proc/PID/maps protects.
func (d *procDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := d.checkLayoutAccess(ctx); errno != 0 {
		return nil, errno
	}
	switch name {
	case "info", "statm":
		if errno := d.alive(); errno != 0 {
			return nil, errno
		}
		t := &textFile{dir: d, statm: name == "statm"}
		t.fsys = d.fsys
		t.fillAttr(&out.Attr, -1)
		return d.NewInode(ctx, t, t.stableAttr()), 0
	}
	if start, end, ok := procfs.ParseRegionName(name); ok {
		r, errno := d.findRegion(start, end)
		if errno != 0 {
			return nil, errno
		}
		n := &regionFile{dir: d, start: r.Start, end: r.End, perms: r.Perms}
		n.fsys = d.fsys
		n.fillAttr(&out.Attr)
		stableEntry(out, stableTimeout)
		return d.NewInode(ctx, n, n.stableAttr()), 0
	}
	if _, errno := d.findLink(name); errno != 0 {
		return nil, errno
	}
	l := &regionLink{dir: d, name: name}
	l.fsys = d.fsys
	l.fillAttr(&out.Attr)
	return d.NewInode(ctx, l, l.stableAttr()), 0
}

func (d *procDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	regions, errno := d.snapshot(0)
	if errno != 0 {
		// ENOENT from readdir reads as an empty directory to glibc; say
		// the process is gone instead.
		if errno == syscall.ENOENT {
			errno = syscall.ESRCH
		}
		return nil, errno
	}
	entries := make([]fuse.DirEntry, 0, len(regions)+8)
	for _, name := range []string{"info", "statm"} {
		t := &textFile{dir: d, statm: name == "statm"}
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: t.stableAttr().Ino})
	}
	for _, r := range regions {
		n := regionFile{dir: d, start: r.Start, end: r.End}
		entries = append(entries, fuse.DirEntry{Name: r.Name(), Mode: syscall.S_IFREG, Ino: n.stableAttr().Ino})
	}
	for name := range links(regions) {
		l := regionLink{dir: d, name: name}
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFLNK, Ino: l.stableAttr().Ino})
	}
	sortEntries(entries[2+len(regions):])
	return gofs.NewListDirStream(entries), 0
}
