package fs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/procmem/procmem/core"
	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

// procDir is the directory of one process: a file per region, info,
// statm, and a symlink per uniquely named pseudo-region ([heap] -> heap).
type procDir struct {
	dirNode
	pid   int
	start uint64        // process start time: with pid, the process's identity
	owner atomic.Uint64 // uid<<32 | gid of /proc/PID as last seen: they own its files

	forgotten atomic.Bool  // the kernel was told to drop this directory
	used      atomic.Int64 // when it was last looked in, in Unix nanoseconds

	mu    sync.Mutex
	views map[identity]*view // by caller, at most maxViews

	coreMu sync.Mutex
	core   reading[*core.Image] // the core last built, for a stat and the open after it

	capture *captured // set for a directory of captured memory, which has no process

	shownMu sync.Mutex
	shown   []procfs.Region // the last fresh reading of maps, whoever read it
}

// view is what one caller has read of the process's layout, each file
// through an fd opened with that caller's credentials, so that what a
// caller is shown is what the kernel let it read.
type view struct {
	maps  reading[*mapsSnapshot]    // the last read of maps
	smaps reading[[]procfs.Mapping] // of smaps, for extended attributes
	used  time.Time
}

// maxViews bounds the callers whose readings a process directory keeps.
const maxViews = 8

// reading is the last read of one of a process's files and when it was
// taken, kept so that a burst of requests (the lookups of a readdirplus,
// the getxattrs of getfattr -d) costs one read.
type reading[T any] struct {
	val T
	at  time.Time // zero until the first read
}

// fresh returns r's value if it is younger than maxAge, and otherwise reads
// it again from the process. The lock that guards r must be held.
func fresh[T any](ctx context.Context, d *procDir, r *reading[T], maxAge time.Duration, read func(*procfs.Process) (T, error)) (T, error) {
	if !r.at.IsZero() && time.Since(r.at) < maxAge {
		return r.val, nil
	}
	v, err := readProcess(ctx, d, read)
	if err != nil {
		return v, err
	}
	r.val, r.at = v, time.Now()
	return v, nil
}

// readProcess pins the process of d, reads from it and lets it go, within
// the bound on calls into it: what read returns must hold nothing that
// needs closing, as it is dropped if the request gives up.
func readProcess[T any](ctx context.Context, d *procDir, read func(*procfs.Process) (T, error)) (T, error) {
	return do(ctx, d.fsys.bound, d.key(), func() (T, error) { return withProcess(d.pin, read) }, nil)
}

// withProcess pins a process with pin, reads from it and lets it go.
func withProcess[T any](pin func() (*procfs.Process, error), read func(*procfs.Process) (T, error)) (T, error) {
	p, err := pin()
	if err != nil {
		var zero T
		return zero, err
	}
	defer p.Close()
	return read(p)
}

// mapsSnapshot is the process's regions as maps showed them at one moment
// to one caller, and how much of each is resident, scanned when first
// asked.
type mapsSnapshot struct {
	dir     *procDir
	regions []procfs.Region
	image   procfs.Image // the image maps was read from

	once     sync.Once
	resident map[uint64]uint64 // resident bytes by region start

	infoOnce sync.Once
	infoText []byte // info rendered from this reading, shared by its opens
}

// info is the text of info for this reading, rendered at the first
// question.
func (s *mapsSnapshot) info() []byte {
	s.infoOnce.Do(func() {
		var b bytes.Buffer
		report.Info(&b, s.regions)
		s.infoText = b.Bytes()
	})
	return s.infoText
}

var (
	_ = (gofs.NodeLookuper)((*procDir)(nil))
	_ = (gofs.NodeOpendirHandler)((*procDir)(nil))
	_ = (gofs.NodeGetattrer)((*procDir)(nil))
	_ = (gofs.NodeSetattrer)((*procDir)(nil))
)

// snapshotAge bounds how old a maps snapshot may be when it answers a stat
// or an open, or gives info its size: a burst of them must not read maps
// each time. A lookup by name trusts a snapshot for as long as the kernel
// would have cached the name (stableTimeout): under --allow-other the
// kernel caches none, and ls -l of 60,000 regions looks names up 180,000
// times. A name missing from the snapshot always triggers a fresh read, so
// new regions appear at once.
const snapshotAge = 100 * time.Millisecond

// newProcDir makes the directory of the thread-group leader pid. A
// process that is gone, or is a thread, is ENOENT; a failure to look
// (EMFILE) is not.
func (fsys *FS) newProcDir(pid int) (*procDir, syscall.Errno) {
	p, err := procfs.Open(pid)
	if err != nil {
		return nil, toErrno(err)
	}
	defer p.Close()
	if p.Zombie {
		return nil, syscall.ENOENT
	}
	st, err := p.Status()
	if err != nil {
		return nil, toErrno(err)
	}
	if st.Tgid != pid {
		return nil, syscall.ENOENT // a thread: not listed, not found
	}
	d := &procDir{pid: pid, start: p.StartTime}
	d.fsys = fsys
	d.touch()
	d.setOwner(p)
	return d, 0
}

// key names the process in the bound on calls into it.
func (d *procDir) key() procKey { return procKey{d.pid, d.start} }

func (d *procDir) stableAttr() gofs.StableAttr {
	return gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: inode(kindProc, uint64(d.pid), d.start), Gen: d.start}
}

func (d *procDir) fillAttr(a *fuse.Attr) {
	// As /proc/PID: open to all, the layout guarded by the checks of
	// Lookup and Opendir (a caller with CAP_SYS_PTRACE but not
	// CAP_DAC_OVERRIDE may read another user's maps, and must get in).
	a.Mode = syscall.S_IFDIR | 0o555
	if c := d.capture; c != nil {
		a.Mode = syscall.S_IFDIR | c.mode | c.mode>>2 // listed and entered by whoever may read the core
	}
	a.Nlink = 2
	a.Uid, a.Gid = d.ids()
	a.Ino = d.stableAttr().Ino
	setTimes(a, d.time())
}

// pin opens the process and checks it is still the one this directory
// was made for: a reused PID is ErrGone. Only a process that is gone makes
// the kernel drop the directory; running out of descriptors does not.
func (d *procDir) pin() (*procfs.Process, error) {
	if d.capture != nil {
		return nil, fmt.Errorf("%s is captured memory, no process: %w", d.capture.path, syscall.ENOENT)
	}
	p, err := procfs.Open(d.pid)
	if err == nil && (p.StartTime != d.start || p.Zombie) {
		p.Close()
		err = memory.ErrGone
	}
	if err != nil {
		if memory.Classify(err) == memory.Gone {
			d.forget()
		}
		return nil, err
	}
	d.setOwner(p)
	return p, nil
}

// setOwner notes who owns the process now: after a setuid exec, the new
// effective ids; root, once it is not dumpable.
func (d *procDir) setOwner(p *procfs.Process) {
	if uid, gid, err := p.Owner(); err == nil {
		d.owner.Store(uint64(uid)<<32 | uint64(gid))
	}
}

// ids are the owner of the directory and its files.
func (d *procDir) ids() (uid, gid uint32) {
	o := d.owner.Load()
	return uint32(o >> 32), uint32(o)
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
func (d *procDir) alive() error {
	if d.capture != nil {
		return nil
	}
	p, err := d.pin()
	if err == nil {
		p.Close()
	}
	return err
}

// view returns the readings of callers of identity c. d.mu must be held.
func (d *procDir) view(c identity) *view {
	v := d.views[c]
	if v == nil {
		if d.views == nil {
			d.views = map[identity]*view{}
		}
		if len(d.views) >= maxViews {
			var oldest identity
			for k, w := range d.views {
				if v == nil || w.used.Before(v.used) {
					oldest, v = k, w
				}
			}
			delete(d.views, oldest)
		}
		v = &view{}
		d.views[c] = v
	}
	v.used = time.Now()
	return v
}

// snapshot returns the process's regions as the caller may see them,
// read afresh through an fd opened with its credentials unless its last
// reading is younger than maxAge. A caller who may not read maps gets the
// kernel's EACCES.
func (d *procDir) snapshot(ctx context.Context, maxAge time.Duration) (*mapsSnapshot, error) {
	d.touch()
	if d.capture != nil {
		return d.capture.snapshot(d), nil
	}
	c, err := d.fsys.access.caller(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return fresh(ctx, d, &d.view(c.identity).maps, maxAge, func(p *procfs.Process) (*mapsSnapshot, error) {
		return d.readLayout(p, c)
	})
}

// readLayout reads the regions of p, as credentials c may see them.
func (d *procDir) readLayout(p *procfs.Process, c who) (*mapsSnapshot, error) {
	maps, image, err := d.fsys.openMaps(p, c)
	if err != nil {
		return nil, err
	}
	defer maps.Close()
	snap, err := d.snapshotFrom(maps, image)
	if err == nil {
		d.observe(snap.regions)
	}
	return snap, err
}

// observe compares a fresh reading of maps with the last one, and tells
// the kernel to forget the names of regions that are gone and the
// attributes of those whose permissions changed: it caches them for
// regionTimeout, and must not answer with them any longer.
func (d *procDir) observe(regions []procfs.Region) {
	d.shownMu.Lock()
	prev := d.shown
	d.shown = regions
	d.shownMu.Unlock()
	var gone, changed []string
	i := 0
	for _, p := range prev {
		for i < len(regions) && regions[i].Start < p.Start {
			i++
		}
		switch {
		case i == len(regions) || regions[i].Start != p.Start || regions[i].End != p.End:
			gone = append(gone, p.Name())
		case regions[i].Perms != p.Perms:
			changed = append(changed, p.Name())
		}
	}
	if len(gone)+len(changed) > 0 && d.fsys.root != nil {
		// Not inside the request: the kernel may hold the directory's lock.
		go d.forgetNames(gone, changed)
	}
}

// forgetNames has the kernel drop the entries of gone and the attributes
// of changed, which it may have cached.
func (d *procDir) forgetNames(gone, changed []string) {
	for _, name := range gone {
		d.NotifyEntry(name)
	}
	for _, name := range changed {
		if ch := d.GetChild(name); ch != nil {
			ch.NotifyContent(0, 0)
		}
	}
}

// openMaps opens maps with credentials c, and tells the image the process
// ran just before, when p was pinned: stat's addresses, which every exec
// sets anew, so that what is read later with the daemon's own rights (the
// page tables) can be checked to be of the same address space. p must
// have been pinned just now.
func (fsys *FS) openMaps(p *procfs.Process, c who) (*os.File, procfs.Image, error) {
	var maps *os.File
	err := fsys.access.as(c, p.PID, func() error {
		var err error
		maps, err = p.OpenFile("maps", syscall.O_RDONLY)
		return err
	})
	return maps, p.Image, err
}

// snapshotFrom reads an open maps whole.
func (d *procDir) snapshotFrom(maps *os.File, image procfs.Image) (*mapsSnapshot, error) {
	regions, err := procfs.ReadMaps(maps)
	if err != nil {
		return nil, err
	}
	if regions == nil {
		regions = []procfs.Region{} // kernel threads, and fds of an address space gone, have none
	}
	return &mapsSnapshot{dir: d, regions: regions, image: image}, nil
}

// currentRegions reads maps as they are now, as the caller may see them:
// no residency, no cache, for what must follow the regions at once.
func (d *procDir) currentRegions(ctx context.Context) ([]procfs.Region, error) {
	if d.capture != nil {
		return d.capture.regions, nil
	}
	c, err := d.fsys.access.caller(ctx)
	if err != nil {
		return nil, err
	}
	regions, err := readProcess(ctx, d, func(p *procfs.Process) ([]procfs.Region, error) {
		return readAs(d.fsys.access, c, p, "maps", procfs.ReadMaps)
	})
	if err == nil {
		d.observe(regions)
	}
	return regions, err
}

// readAs reads the named file of p through an fd opened as caller c.
func readAs[T any](a *accessControl, c who, p *procfs.Process, name string, read func(*os.File) (T, error)) (T, error) {
	var f *os.File
	err := a.as(c, p.PID, func() error {
		var err error
		f, err = p.OpenFile(name, syscall.O_RDONLY)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	return read(f)
}

// smaps returns the process's smaps as the caller may see them, read
// afresh unless its last read is younger than snapshotAge: getfattr -d
// asks for every attribute in turn.
func (d *procDir) smaps(ctx context.Context) ([]procfs.Mapping, error) {
	c, err := d.fsys.access.caller(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return fresh(ctx, d, &d.view(c.identity).smaps, snapshotAge, func(p *procfs.Process) ([]procfs.Mapping, error) {
		return readAs(d.fsys.access, c, p, "smaps", procfs.ReadSmaps)
	})
}

// residentBytes tells how much of a region is resident, from one scan of
// the page tables for all regions of the snapshot at its first question
// ("ls" asks none, "ls -l" one per file). The page tables are read with
// the daemon's rights (pagemap is mode 0400, and a caller may read maps by
// capability alone), and only while the process runs the image the
// snapshot was read from; else nothing is known.
func (s *mapsSnapshot) residentBytes(ctx context.Context, start, end uint64) uint64 {
	s.once.Do(func() {
		if s.dir.capture != nil {
			s.resident = s.dir.capture.resident()
			return
		}
		s.resident, _ = readProcess(ctx, s.dir, func(p *procfs.Process) (map[uint64]uint64, error) {
			pm, err := p.OpenPagemap()
			if err != nil {
				return nil, err
			}
			defer pm.Close()
			if st, err := p.Stat(); err != nil || st.Image != s.image {
				return nil, memory.ErrGone
			}
			return memory.Resident(pm, s.regions), nil
		})
	})
	if n, ok := s.resident[start]; ok {
		return n
	}
	return end - start // not in the snapshot: claim nothing is sparse
}

// findRegion looks a region up by its bounds in a snapshot younger than
// maxAge, reading maps again if that snapshot does not have it.
func (d *procDir) findRegion(ctx context.Context, start, end uint64, maxAge time.Duration) (procfs.Region, *mapsSnapshot, error) {
	for _, age := range []time.Duration{maxAge, 0} {
		snap, err := d.snapshot(ctx, age)
		if err != nil {
			return procfs.Region{}, nil, err
		}
		if r, ok := snap.find(start, end); ok {
			return r, snap, nil
		}
	}
	return procfs.Region{}, nil, syscall.ENOENT
}

// find finds the region with these bounds.
func (s *mapsSnapshot) find(start, end uint64) (procfs.Region, bool) {
	r, ok := searchRegion(s.regions, start)
	return r, ok && r.End == end
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
	switch name {
	case "", ".", "..", "info", "statm", "mem", "core":
		return ""
	}
	if strings.ContainsAny(name, "/\x00") {
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

// findLink resolves a link name against the maps as they are now: a link
// must follow its region at once (a heap that grows gets a new name). The
// caller's reading names the region; the kernel confirms it is still so
// (PROCMAP_QUERY), one question instead of a reading of all maps (of
// 60,000 regions, tens of milliseconds, for every link ls -l reads). Only
// if it is not is maps read again.
func (d *procDir) findLink(ctx context.Context, name string) (procfs.Region, error) {
	snap, err := d.snapshot(ctx, stableTimeout)
	if err != nil {
		return procfs.Region{}, err
	}
	if r, ok := links(snap.regions)[name]; ok && (d.capture != nil || d.stillMapped(ctx, r)) {
		return r, nil
	}
	regions, err := d.currentRegions(ctx)
	if err != nil {
		return procfs.Region{}, err
	}
	if r, ok := links(regions)[name]; ok {
		return r, nil
	}
	return procfs.Region{}, syscall.ENOENT
}

// stillMapped asks the kernel whether region r, which the caller read in
// maps, is still mapped as it was: the same bounds and pathname.
func (d *procDir) stillMapped(ctx context.Context, r procfs.Region) bool {
	same, _ := readProcess(ctx, d, func(p *procfs.Process) (bool, error) {
		q, err := p.OpenMapsQuery()
		if err != nil {
			return false, err
		}
		defer q.Close()
		m, ok, err := q.FindNamed(r.Start)
		return err == nil && ok && m.Start == r.Start && m.End == r.End && m.Path == r.Path, nil
	})
	return same
}

func (d *procDir) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if err := d.alive(); err != nil {
		return toErrno(err)
	}
	d.fillAttr(&out.Attr)
	out.SetTimeout(procTimeout)
	return 0
}

func (d *procDir) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return d.denied()
}

// OpendirHandle lets the caller list the regions only if the kernel would
// let it read /proc/PID/maps: the names reveal the layout.
//
// The listing reads maps, whenever it is read or rewound, through an fd
// opened here with the caller's credentials: once the process execs, it
// lists nothing, as that fd of /proc/PID/maps reads nothing.
func (d *procDir) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	l, err := d.openListing(ctx)
	if err != nil {
		return nil, 0, toErrno(err)
	}
	return l, 0, 0
}

// Lookup answers only callers who may read the layout: that a region
// exists, or where "heap" points, is what /proc/PID/maps protects.
func (d *procDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx, err := d.fsys.access.withCaller(ctx)
	if err != nil {
		return nil, toErrno(err)
	}
	if errno := d.checkLayoutAccess(ctx); errno != 0 {
		return nil, errno
	}
	return d.lookup(ctx, name, out, nil)
}

// checkLayoutAccess lets the caller on only if the kernel let it read
// /proc/PID/maps, now or within the time a name may be cached: names,
// links and attributes reveal the layout.
func (d *procDir) checkLayoutAccess(ctx context.Context) syscall.Errno {
	_, err := d.snapshot(ctx, stableTimeout)
	return toErrno(err)
}

// lookup finds name in snap, a listing's snapshot, or if that is nil in
// maps as read within stableTimeout (afresh if that reading lacks it).
func (d *procDir) lookup(ctx context.Context, name string, out *fuse.EntryOut, snap *mapsSnapshot) (*gofs.Inode, syscall.Errno) {
	d.touch()
	switch name {
	case "info", "statm":
		if name == "statm" && d.capture != nil {
			return nil, syscall.ENOENT // a core has no counters
		}
		if err := d.alive(); err != nil {
			return nil, toErrno(err)
		}
		t := &textFile{dir: d, statm: name == "statm"}
		t.fsys = d.fsys
		size := -1 // what it would render now
		if snap != nil {
			// A listing's: its reading is the caller's, info as of it.
			if b, errno := t.contentAfter(ctx, snap); errno == 0 {
				size = len(b)
			}
		}
		t.fillAttr(ctx, &out.Attr, size)
		out.SetEntryTimeout(stableTimeout) // every process has them
		return d.NewInode(ctx, t, t.stableAttr()), 0
	}
	if name == "core" {
		if err := d.alive(); err != nil {
			return nil, toErrno(err)
		}
		n := &coreFile{dir: d}
		n.fsys = d.fsys
		if errno := n.attr(ctx, nil, &out.Attr); errno != 0 {
			return nil, errno
		}
		return d.NewInode(ctx, n, n.stableAttr()), 0
	}
	if name == "mem" {
		snap, err := d.snapshot(ctx, snapshotAge)
		if err != nil {
			return nil, toErrno(err)
		}
		n := &memFile{dir: d}
		n.fsys = d.fsys
		n.fillAttr(ctx, &out.Attr, snap)
		return d.NewInode(ctx, n, n.stableAttr()), 0
	}
	if start, end, ok := procfs.ParseRegionName(name); ok {
		var r procfs.Region
		var err error
		if snap == nil {
			r, snap, err = d.findRegion(ctx, start, end, stableTimeout)
		} else if r, ok = snap.find(start, end); !ok {
			err = syscall.ENOENT
		}
		if err != nil {
			return nil, toErrno(err)
		}
		n := &regionFile{dir: d, start: r.Start, end: r.End, perms: r.Perms}
		n.fsys = d.fsys
		n.fillAttr(ctx, &out.Attr, snap)
		// A region's name may be cached for every caller: a caller who
		// knows it learns nothing from a stat, and only one who may read
		// maps can learn it (docs/security.md).
		out.SetEntryTimeout(regionTimeout)
		out.SetAttrTimeout(regionTimeout)
		return d.NewInode(ctx, n, n.stableAttr()), 0
	}
	if snap == nil {
		if _, err := d.findLink(ctx, name); err != nil {
			return nil, toErrno(err)
		}
	} else if _, ok := links(snap.regions)[name]; !ok {
		return nil, syscall.ENOENT
	}
	l := &regionLink{dir: d, name: name}
	l.fsys = d.fsys
	l.fillAttr(&out.Attr)
	// That a process has a heap tells nothing; where it points is asked
	// of Readlink every time.
	out.SetEntryTimeout(stableTimeout)
	out.SetAttrTimeout(stableTimeout)
	return d.NewInode(ctx, l, l.stableAttr()), 0
}

// time is when the process started, or when its capture was written: the
// times of the directory and its files.
func (d *procDir) time() time.Time {
	if d.capture != nil {
		return time.Unix(0, d.capture.mtime)
	}
	return d.fsys.startTime(d.start)
}
