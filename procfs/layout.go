package procfs

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Reading /proc/PID/mem has side effects on the target: an untouched page
// of anonymous memory gets page tables (on some kernels a real page), a
// hole of shmem or memfd gets allocated. A Layout tells which parts of a
// region hold data, so that readers can return zeros for the rest without
// touching the process.

// SegmentKind is what a stretch of a region holds.
type SegmentKind int

const (
	Hole       SegmentKind = iota // holds no data: reads as zeros, left untouched
	Data                          // read from memory
	Resident                      // data in pages the page tables show present or swapped
	Unreadable                    // a guard region: reads fail with EIO
)

// Segment is a stretch [Start, End) of one kind.
type Segment struct {
	Start, End uint64
	Kind       SegmentKind
}

// Layout tells data from holes in one region. How depends on the region:
//   - private anonymous memory (no file, [heap], [stack], [anon:NAME], and
//     private hugetlb): a page neither present nor swapped holds nothing;
//   - shared mappings of a file (shmem, memfd, files): the file's own holes
//     (SEEK_DATA), since a page this process never touched may still hold
//     data; this needs /proc/PID/map_files, so CAP_SYS_ADMIN;
//   - everything else (private file mappings, [vdso]), and shared mappings
//     without CAP_SYS_ADMIN: all data, read as the kernel would.
//
// A Layout is bound to the address space it was opened on (its pagemap
// answers ESRCH once that is gone), and tells through Alive whether it
// still is.
type Layout struct {
	region Region
	pm     *Pagemap
	file   *os.File // the mapped file, for shared mappings
	anon   bool
}

// OpenLayout opens what the layout of region r needs.
func (p *Process) OpenLayout(r Region) (*Layout, error) {
	pm, err := p.OpenPagemap()
	if err != nil {
		return nil, err
	}
	l := &Layout{region: r, pm: pm, anon: isPrivateAnon(r)}
	if !l.anon && r.Perms.Shared && r.Path != "" && !r.Pseudo() {
		l.file, _ = p.OpenMapFile(r) // without CAP_SYS_ADMIN: all data
	}
	return l, nil
}

// Close releases the layout's files.
func (l *Layout) Close() error {
	if l.file != nil {
		l.file.Close()
	}
	return l.pm.Close()
}

// Alive reports ESRCH once the address space the layout was opened on is
// gone (the process exited or execed).
func (l *Layout) Alive() error {
	_, err := l.pm.scanIoctl(l.region.Start, l.region.Start+1)
	if errors.Is(err, unix.ESRCH) {
		return unix.ESRCH
	}
	if err != nil { // no PAGEMAP_SCAN: an empty read of pagemap says the same
		if _, err := l.pm.scanEntries(l.region.Start, l.region.Start+1); err != nil {
			return unix.ESRCH
		}
	}
	return nil
}

func isPrivateAnon(r Region) bool {
	if r.Perms.Shared {
		return false
	}
	switch {
	case r.Path == "", r.Path == "[heap]", r.Path == "[stack]",
		strings.HasPrefix(r.Path, "[stack:"), strings.HasPrefix(r.Path, "[anon:"),
		r.Path == "/anon_hugepage (deleted)", r.Path == "/anon_hugepage":
		return true
	}
	return false
}

// Segments returns the layout of [start, end), in order and without gaps.
func (l *Layout) Segments(start, end uint64) ([]Segment, error) {
	switch {
	case l.anon:
		return l.anonSegments(start, end)
	case l.file != nil:
		return l.fileSegments(start, end)
	}
	return []Segment{{start, end, Data}}, nil
}

// segmentList builds a segment list, merging neighbours of one kind.
type segmentList []Segment

func (s *segmentList) add(start, end uint64, kind SegmentKind) {
	if start >= end {
		return
	}
	if n := len(*s); n > 0 && (*s)[n-1].Kind == kind && (*s)[n-1].End == start {
		(*s)[n-1].End = end
		return
	}
	*s = append(*s, Segment{start, end, kind})
}

func (l *Layout) anonSegments(start, end uint64) ([]Segment, error) {
	ranges, err := l.pm.Scan(start, end)
	if err != nil {
		return nil, err
	}
	var segs segmentList
	at := start
	for _, r := range ranges {
		s, e := max(r.Start, start), min(r.End, end)
		segs.add(at, s, Hole)
		switch {
		case r.HoldsData():
			segs.add(s, e, Resident)
		case r.Flags&PageGuard != 0:
			segs.add(s, e, Unreadable)
		default:
			segs.add(s, e, Hole) // the zero page
		}
		at = max(at, e)
	}
	segs.add(at, end, Hole)
	return segs, nil
}

func (l *Layout) fileSegments(start, end uint64) ([]Segment, error) {
	st, err := l.file.Stat()
	if err != nil {
		return nil, err
	}
	r := l.region
	toFile := func(addr uint64) int64 { return int64(r.Offset + addr - r.Start) }
	toAddr := func(off int64) uint64 { return uint64(off) - r.Offset + r.Start }
	// Past the end of the file the kernel fails the read, so that part is
	// left as data for the kernel to refuse.
	fileEnd := start
	if size := uint64(max(st.Size(), 0)); size > r.Offset {
		fileEnd = max(min(toAddr(int64(size)), end), start)
	}
	var segs segmentList
	at := start
	for at < fileEnd {
		data, err := unix.Seek(int(l.file.Fd()), toFile(at), unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // a hole up to the end of the file
		}
		if err != nil {
			return nil, err
		}
		hole, err := unix.Seek(int(l.file.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		ds, de := min(toAddr(data), fileEnd), min(toAddr(hole), fileEnd)
		segs.add(at, ds, Hole)
		segs.add(ds, de, Data)
		if de <= at {
			break
		}
		at = de
	}
	segs.add(at, fileEnd, Hole)
	segs.add(max(at, fileEnd), end, Data)
	return segs, nil
}

// HasData reports whether any segment is to be read from memory.
func HasData(segs []Segment) bool {
	for _, s := range segs {
		if s.Kind != Hole {
			return true
		}
	}
	return false
}

// ReadSegments fills b, which holds memory from addr on, segment by
// segment: data from memory, zeros for holes. It stops at the first part
// that cannot be read and returns what came before it, or the error if
// nothing came before it.
func ReadSegments(m *Mem, b []byte, addr uint64, segs []Segment) (int, error) {
	fast := m.readResident(b, addr, segs)
	done := 0
	for _, s := range segs {
		part := b[s.Start-addr : s.End-addr]
		var err error
		switch s.Kind {
		case Hole:
			clear(part)
			done += len(part)
			continue
		case Unreadable:
			err = unix.EIO
		case Resident:
			if fast {
				done += len(part)
				continue
			}
			fallthrough
		default:
			var n int
			n, err = m.ReadFull(part, s.Start)
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
