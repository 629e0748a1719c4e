package fs

import (
	"context"
	"os"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/procmem/procmem/procfs"
)

// listing is an open process directory. It lists the regions as maps
// showed them when it was first read (or rewound), and answers the lookups
// of a READDIRPLUS from that same reading: "ls -l" of a process with
// 60,000 regions reads maps and scans the page tables once, and every
// entry it shows agrees with the others.
type listing struct {
	dir    *procDir
	maps   *os.File     // opened with the caller's credentials
	image  procfs.Image // the image the process ran when maps was opened
	charge *charge      // the descriptor and the entries, charged to the caller

	entryStream
	snap *mapsSnapshot // the reading the entries were made from
}

var (
	_ = (gofs.FileReaddirenter)((*listing)(nil))
	_ = (gofs.FileSeekdirer)((*listing)(nil))
	_ = (gofs.FileLookuper)((*listing)(nil))
	_ = (gofs.FileReleasedirer)((*listing)(nil))
)

// openListing opens maps with the caller's credentials: the kernel's
// EACCES if it may not read them.
func (d *procDir) openListing(ctx context.Context) (*listing, error) {
	if d.capture != nil {
		charge, err := d.fsys.account.open(ctx, 0, 0)
		if err != nil {
			return nil, err
		}
		return &listing{dir: d, charge: charge}, nil
	}
	c, err := d.fsys.access.caller(ctx)
	if err != nil {
		return nil, err
	}
	charge, err := d.fsys.account.open(ctx, fdsDir, 0)
	if err != nil {
		return nil, err
	}
	type opened struct {
		maps  *os.File
		image procfs.Image
	}
	o, err := do(ctx, d.fsys.bound, d.key(), func() (opened, error) {
		return withProcess(d.pin, func(p *procfs.Process) (opened, error) {
			maps, image, err := d.fsys.openMaps(p, c)
			return opened{maps, image}, err
		})
	}, func(o opened) {
		if o.maps != nil {
			o.maps.Close()
		}
	})
	if err != nil {
		charge.release()
		return nil, err
	}
	return &listing{dir: d, maps: o.maps, image: o.image, charge: charge}, nil
}

// Releasedir closes the listing's files.
func (l *listing) Releasedir(ctx context.Context, flags uint32) {
	if l.maps != nil {
		l.maps.Close()
	}
	l.charge.release()
}

// entryBytes is about what a listing holds for each region: the region as
// parsed and its entry.
const entryBytes = 256

// load reads maps afresh and makes the entries: the dots, info, statm, the
// regions in address order, the links by name.
func (l *listing) load(ctx context.Context) syscall.Errno {
	d := l.dir
	snap, err := do(ctx, d.fsys.bound, d.key(), func() (*mapsSnapshot, error) {
		if d.capture != nil {
			return d.capture.snapshot(d), nil
		}
		if err := d.alive(); err != nil {
			return nil, err
		}
		snap, err := d.snapshotFrom(l.maps, l.image)
		if err == nil {
			d.observe(snap.regions)
		}
		return snap, err
	}, nil)
	if err != nil {
		return readdirErrno(err)
	}
	// What the last reading held is given back; this one is charged.
	if grow := int64(len(snap.regions)+10)*entryBytes - (l.charge.bytes - minHandleBytes); grow > 0 {
		if err := l.charge.grow(0, grow); err != nil {
			return toErrno(err)
		}
	}
	entries := make([]fuse.DirEntry, 0, len(snap.regions)+10)
	entries = append(entries, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: d.stableAttr().Ino},
		fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: rootIno})
	texts := []string{"info", "statm"}
	if d.capture != nil {
		texts = texts[:1]
	}
	for _, name := range texts {
		t := textFile{dir: d, statm: name == "statm"}
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: t.stableAttr().Ino})
	}
	// Regions nothing can read ([vvar], [vsyscall]) are not listed, so
	// that recursive tools (grep -r, cp -r, tar, yara -r) of a process
	// directory succeed; they are there by name, and in info.
	listed := make([]procfs.Region, 0, len(snap.regions))
	for _, r := range snap.regions {
		if !r.Unreadable() {
			listed = append(listed, r)
		}
	}
	for _, r := range listed {
		n := regionFile{dir: d, start: r.Start, end: r.End}
		entries = append(entries, fuse.DirEntry{Name: r.Name(), Mode: syscall.S_IFREG, Ino: n.stableAttr().Ino})
	}
	regions := len(entries)
	for name := range links(listed) {
		r := regionLink{dir: d, name: name}
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFLNK, Ino: r.stableAttr().Ino})
	}
	sortEntries(entries[regions:])
	l.snap = snap
	l.set(entries)
	return 0
}

func (l *listing) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	l.dir.touch()
	return l.readdirent(func() syscall.Errno { return l.load(ctx) })
}

// Seekdir resumes after the entry whose Off is off; 0 rewinds, and the
// next read lists maps as they are then.
func (l *listing) Seekdir(ctx context.Context, off uint64) syscall.Errno { return l.seekdir(off) }

// Lookup answers for the entry just listed, from the listing's snapshot.
// The caller passed the access check when it opened the directory.
func (l *listing) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	l.mu.Lock()
	snap := l.snap
	l.mu.Unlock()
	return l.dir.lookup(ctx, name, out, snap)
}

// entryStream is what an open directory lists: its entries, made when it
// is first read (or rewound), handed out one by one. mu also guards what
// the listing made them from.
type entryStream struct {
	mu      sync.Mutex
	entries []fuse.DirEntry
	next    int
}

// readdirent returns the next entry, having load make the entries (with
// set) if there are none; nil at the end.
func (s *entryStream) readdirent(load func() syscall.Errno) (*fuse.DirEntry, syscall.Errno) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		if errno := load(); errno != 0 {
			return nil, errno
		}
	}
	if s.next >= len(s.entries) {
		return nil, 0
	}
	e := s.entries[s.next]
	s.next++
	return &e, 0
}

// set makes entries the listing, from its start; each entry's Off is where
// the next readdir resumes. s.mu must be held.
func (s *entryStream) set(entries []fuse.DirEntry) {
	for i := range entries {
		entries[i].Off = uint64(i + 1)
	}
	s.entries, s.next = entries, 0
}

// seekdir resumes after the entry whose Off is off; 0 rewinds, and the
// next read makes the entries anew.
func (s *entryStream) seekdir(off uint64) syscall.Errno {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off == 0 {
		s.entries = nil
		return 0
	}
	if off > uint64(len(s.entries)) {
		return syscall.EINVAL
	}
	s.next = int(off)
	return 0
}
