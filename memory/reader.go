package memory

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// Opener runs open with the credentials of whoever the memory is opened
// for, so that the kernel's own checks (ptrace_may_access, the modes of
// files) decide. The command line opens as itself; the filesystem as the
// caller of a request. mapFiles says that open opens a file through
// /proc/PID/map_files, which the kernel lets only CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE traverse: an opener adds the latter to the
// caller's credentials for it, so the caller's rights still decide
// whether it may reach the process and read the file.
type Opener func(open func() error, mapFiles bool) error

// Self opens with the process's own credentials.
func Self(open func() error, mapFiles bool) error { return open() }

// Reader reads one process's address space: the one its mem fd was opened
// on, with the credentials of its Opener. Once that address space is gone
// (exit, exec), every read fails with ErrGone, never another process's
// memory. A Reader may be used by several goroutines at once.
//
// Every byte a Reader hands out comes through a descriptor its Opener
// opened (mem, maps, the mapped files), or is checked after it was read to
// come from the address space mem was opened on (process_vm_readv and the
// page tables, read with the daemon's own rights).
type Reader struct {
	proc  *procfs.Process   // a pin of its own, for the image check
	as    Opener            // the credentials everything is opened with
	mem   mem               // opened with as
	query *procfs.MapsQuery // maps, opened with as together with mem: which addresses are mapped, and how
	pm    *procfs.Pagemap   // the page tables: which pages hold data
	vm    *vmReader         // the fast path; nil if none
	write bool
	avoid string // the device of files never read through the target (Avoid)
	files mapFiles

	capture Capture // the memory's source when it was captured; nil for a live process

	vdsoOnce sync.Once
	vdso     []byte // the daemon's [vdso], if the process's is the same (ownVDSO)

	regionsMu sync.Mutex
	regions   []procfs.Region // the last reading of maps through query
	regionsAt time.Time

	uffdOnce sync.Once
	uffd     [][2]uint64 // regions registered with userfaultfd
	uffdErr  error       // why they could not be told
}

// Open opens the memory of p for reading, and for writing too if write is
// set. The mem and maps fds, opened together with the credentials of as,
// are what prove the access; the page tables are then read with the
// daemon's own rights, for the same address space only.
func Open(p *procfs.Process, as Opener, write bool) (*Reader, error) {
	proc, err := p.Dup()
	if err != nil {
		return nil, err
	}
	rd := &Reader{proc: proc, as: as, mem: mem{fd: -1}, write: write}
	rd.files.rd = rd
	// The image is read before mem is opened and compared after the page
	// tables are: if it is the same, no exec came between, and mem, maps,
	// the page tables and the fast path all see one address space.
	vm := newVMReader(proc)
	flags := unix.O_RDONLY
	if write {
		flags = unix.O_RDWR
	}
	err = as(func() error {
		var err error
		if rd.mem.fd, err = proc.OpenFd("mem", flags); err != nil {
			return err
		}
		maps, err := proc.OpenFile("maps", unix.O_RDONLY)
		if err != nil {
			return err
		}
		rd.query = procfs.NewMapsQuery(maps)
		return nil
	}, false)
	if err == nil {
		rd.pm, err = proc.OpenPagemap()
	}
	if err != nil {
		rd.Close()
		return nil, err
	}
	if vm != nil {
		if st, err := proc.Stat(); err != nil || st.Image != vm.image {
			rd.Close()
			return nil, fmt.Errorf("process %d: %w", p.PID, ErrGone)
		}
		rd.vm = vm
	}
	return rd, nil
}

// OpenCapture makes a Reader of captured memory: the same reads, holes and
// streams as of a live process, from c. It cannot write (ErrCaptured).
// Closing it leaves c open.
func OpenCapture(c Capture) *Reader {
	rd := &Reader{capture: c, mem: mem{fd: -1}}
	rd.files.rd = rd
	return rd
}

// Captured reports whether the reader reads captured memory.
func (rd *Reader) Captured() bool { return rd.capture != nil }

// Image is the image of the address space the reader was opened on.
func (rd *Reader) Image() procfs.Image {
	if rd.capture != nil {
		return procfs.Image{}
	}
	return rd.proc.Image
}

// SameImage fails with ErrGone unless the process still runs the image
// the reader was opened on: what was read of its /proc files with the
// daemon's rights since is then of the address space the reader proves.
// Captured memory never changes.
func (rd *Reader) SameImage() error {
	if rd.capture != nil {
		return nil
	}
	st, err := rd.proc.Stat()
	if err != nil {
		return gone(err)
	}
	if st.Image != rd.proc.Image {
		return fmt.Errorf("process %d: %w", rd.proc.PID, ErrGone)
	}
	return nil
}

// Close releases the reader's files.
func (rd *Reader) Close() error {
	if rd.capture != nil {
		return nil
	}
	err := rd.mem.close()
	rd.vm.close()
	rd.files.close()
	if rd.query != nil {
		rd.query.Close()
	}
	if rd.pm != nil {
		rd.pm.Close()
	}
	rd.proc.Close()
	return err
}

// Regions returns the regions of the address space the reader was opened
// on, as its maps descriptor reads them (with the opener's rights), from
// a reading no older than maxAge. Once the address space is gone there
// are none.
func (rd *Reader) Regions(maxAge time.Duration) ([]procfs.Region, error) {
	if rd.capture != nil {
		return rd.capture.Regions(), nil
	}
	rd.regionsMu.Lock()
	defer rd.regionsMu.Unlock()
	if rd.regions != nil && time.Since(rd.regionsAt) < maxAge {
		return rd.regions, nil
	}
	regions, err := rd.query.Regions()
	if err != nil {
		return nil, err
	}
	if len(regions) == 0 {
		if err := rd.alive(); err != nil {
			return nil, err
		}
	}
	rd.regions, rd.regionsAt = regions, time.Now()
	return regions, nil
}

// alive reports ErrGone once the address space is gone: its page tables
// can no longer be read.
func (rd *Reader) alive() error {
	if rd.capture != nil {
		return nil
	}
	if _, err := rd.pm.Scan(0, pageSize); Classify(err) == Gone {
		return ErrGone
	}
	return nil
}

// SetParallel lets a large read of resident memory be split into shares
// of at least 256 KiB copied at once on up to n threads. The filesystem
// sets it from GOMAXPROCS, so a daemon on one P (its default) never
// splits: with one P a second goroutine waits for the first one's system
// call to give the P up.
func (rd *Reader) SetParallel(n int) {
	if rd.vm != nil {
		rd.vm.parallel = max(n, 1)
	}
}

// Avoid makes mappings of files on device dev ("major:minor" as maps
// shows it) unreadable (EIO), never read through the target. A FUSE
// daemon avoids its own device: reading such a mapping through
// /proc/PID/mem faults it in with the target's mmap_lock held, and the
// fault waits for the daemon, whose handler may wait for that lock.
func (rd *Reader) Avoid(dev string) { rd.avoid = dev }

// Region returns a reader of one region of the address space, whose holes
// follow the region's kind (see layout). Close it after use.
func (rd *Reader) Region(r procfs.Region) *Region {
	return &Region{rd: rd, layout: rd.newLayout(r)}
}

// Region reads one region of a Reader's address space.
type Region struct {
	rd     *Reader
	layout *layout
}

// Close releases what the region's layout holds.
func (g *Region) Close() { g.layout.close() }

// ReadAt fills b with memory from addr, which must lie inside the region:
// pages with data from the process, holes as zeros without touching it.
// It returns the bytes before the first page that cannot be read (an error
// if that is the first), and ErrGone once the address space is gone.
func (g *Region) ReadAt(b []byte, addr uint64) (int, error) {
	r := g.layout.region
	if addr < r.Start || addr >= r.End {
		return 0, fmt.Errorf("0x%x: %w", addr, ErrOutOfRange)
	}
	b = b[:min(uint64(len(b)), r.End-addr)]
	segs, err := g.layout.segments(addr, addr+uint64(len(b)))
	if err != nil {
		if Classify(err) == Gone {
			return 0, ErrGone
		}
		// The layout is a refinement; memory is the truth.
		segs = []segment{{addr, addr + uint64(len(b)), data}}
	}
	// Reading nothing from the process would not notice that it is gone:
	// after an exit a read fails, it never returns zeros or the file.
	if !fromProcess(segs) {
		if err := g.layout.alive(); err != nil {
			return 0, err
		}
	}
	// Nor that a hole was unmapped meanwhile: /proc/PID/mem fails there.
	if segs, err = g.rd.mappedPart(segs, addr); err != nil {
		return 0, err
	}
	return g.rd.readSegments(b[:segs[len(segs)-1].end-addr], addr, segs, g.layout)
}

// mappedPart cuts segs, which start at addr, at the first hole that is no
// longer mapped: the page tables show an unmapped page as they show an
// untouched one. It fails if nothing at addr is mapped.
func (rd *Reader) mappedPart(segs []segment, addr uint64) ([]segment, error) {
	for i, s := range segs {
		if s.kind != hole {
			continue
		}
		end, err := rd.mappedUpTo(s.start, s.end)
		if err != nil || end == s.end {
			continue // a hole wholly mapped, or no way to tell
		}
		if end == addr {
			return nil, fmt.Errorf("read at 0x%x: not mapped: %w", addr, unix.EIO)
		}
		segs = append(segs[:i:i], segment{s.start, end, hole})
		if end == s.start {
			segs = segs[:i]
		}
		return segs, nil
	}
	return segs, nil
}

// mappedUpTo returns the first address in [start, end) that no mapping
// covers.
func (rd *Reader) mappedUpTo(start, end uint64) (uint64, error) {
	q, err := rd.mapsQuery()
	if err != nil {
		return end, err
	}
	return q.MappedUpTo(start, end)
}

// mapsQuery asks the kernel which addresses are mapped now, through the
// maps fd opened with mem; a capture has no kernel to ask.
func (rd *Reader) mapsQuery() (*procfs.MapsQuery, error) {
	if rd.query == nil {
		return nil, procfs.ErrNoQuery
	}
	return rd.query, nil
}

// Seek returns the first address at or after addr (inside the region) that
// starts data, or with hole set a hole; the end of the region counts as a
// hole, and so do pages that cannot be read (guard pages, [vvar]): they
// hold nothing a copy could have, although a read of them fails. ok is
// false when there is no data left.
func (g *Region) Seek(addr uint64, wantHole bool) (at uint64, ok bool, err error) {
	r := g.layout.region
	// A window at a time: cp asks again at every hole and every data, and
	// each answer must not cost a look at the whole rest of the region.
	for start := addr; start < r.End; {
		end := r.End
		if end-start > streamWindow {
			end = start + streamWindow
		}
		segs, err := g.layout.segments(start, end)
		if err != nil {
			return 0, false, gone(err)
		}
		for _, s := range segs {
			if (s.kind == hole || s.kind == unreadable) == wantHole {
				return s.start, true, nil
			}
		}
		start = end
	}
	if wantHole {
		return r.End, true, nil
	}
	return 0, false, nil
}

// readSegments fills b, which holds memory from addr on, segment by
// segment: data from memory or from the mapped file of layout l, zeros for
// holes. It stops at the first part that cannot be read and returns what
// came before it, or the error if nothing came before it.
func (rd *Reader) readSegments(b []byte, addr uint64, segs []segment, l *layout) (int, error) {
	fast := rd.vm.readResident(b, addr, segs, func() bool { return l != nil && !rd.faultsWait(l.region) })
	return rd.fillSegments(b, addr, segs, l, fast)
}

// fillSegments is readSegments once the resident segments were read with
// the fast path (fast), or not.
func (rd *Reader) fillSegments(b []byte, addr uint64, segs []segment, l *layout, fast bool) (int, error) {
	done := 0
	for _, s := range segs {
		part := b[s.start-addr : s.end-addr]
		var err error
		switch s.kind {
		case hole:
			clear(part)
			done += len(part)
			continue
		case unreadable:
			err = fmt.Errorf("read at 0x%x: not readable (a guard page, [vvar]): %w", s.start, unix.EIO)
		case fromFile:
			var n int
			n, err = l.readFile(part, s.start)
			done += n
		case fromVDSO:
			copy(part, l.vdso[s.start-l.region.Start:])
			done += len(part)
			continue
		case fromCapture:
			var n int
			n, err = l.readCapture(part, s.start)
			done += n
		case resident:
			if fast {
				done += len(part)
				continue
			}
			fallthrough
		default:
			var n int
			n, err = rd.mem.readFull(part, s.start)
			done += n
		}
		if err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
	}
	return done, nil
}

// faultsWait reports whether a fault in region r may wait for ever: the
// region is registered with userfaultfd (VmFlags um, uw or ui), or that
// cannot be told. It reads smaps once, at the first large read.
func (rd *Reader) faultsWait(r procfs.Region) bool {
	if rd.capture != nil {
		return false
	}
	rd.uffdOnce.Do(func() {
		var mappings []procfs.Mapping
		if mappings, rd.uffdErr = rd.proc.Smaps(); rd.uffdErr != nil {
			return
		}
		for _, m := range mappings {
			if slices.ContainsFunc(m.VmFlags, func(f string) bool { return f == "um" || f == "uw" || f == "ui" }) {
				rd.uffd = append(rd.uffd, [2]uint64{m.Start, m.End})
			}
		}
	})
	if rd.uffdErr != nil {
		return true
	}
	return slices.ContainsFunc(rd.uffd, func(u [2]uint64) bool { return u[0] < r.End && r.Start < u[1] })
}

// ReadRange fills b with the memory at addr across the given regions (as
// read from maps, in address order), as a region file reads it. Every byte
// must be mapped and readable.
func (rd *Reader) ReadRange(b []byte, addr uint64, regions []procfs.Region) error {
	end := addr + uint64(len(b))
	at := addr
	for _, r := range regions {
		if r.End <= at || r.Start >= end {
			continue
		}
		if r.Start > at {
			break
		}
		stop := min(r.End, end)
		g := rd.Region(r)
		for at < stop {
			n, err := g.ReadAt(b[at-addr:stop-addr], at)
			if err != nil {
				g.Close()
				return err
			}
			at += uint64(n)
		}
		g.Close()
		if at == end {
			return nil
		}
	}
	return fmt.Errorf("0x%x-0x%x is not mapped", at, end)
}

// pageSize is the size of the pages the layouts and streams step by.
var pageSize = uint64(os.Getpagesize())
