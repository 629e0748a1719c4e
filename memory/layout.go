package memory

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// Reading /proc/PID/mem has side effects on the target: an untouched page
// of anonymous memory gets page tables (on some kernels a real page), a
// hole of shmem or memfd gets allocated. A layout tells which parts of a
// region hold data, so that a read returns zeros for the rest without
// touching the process. This file is the one place that decides.

// segmentKind is what a stretch of a region holds.
type segmentKind int

const (
	hole        segmentKind = iota // holds no data: reads as zeros, left untouched
	data                           // read from memory
	resident                       // data in pages the page tables show present or swapped
	unreadable                     // a guard region: reads fail with EIO
	fromFile                       // data the mapped file holds: read from the file, not the process
	fromVDSO                       // a page of [vdso] the process never touched: the daemon's own copy
	fromCapture                    // data a capture holds (a core file): read from it
)

// segment is a stretch [start, end) of one kind.
type segment struct {
	start, end uint64
	kind       segmentKind
}

// layout tells data from holes in one region. How depends on the region:
//   - private anonymous memory (no file, [heap], [stack], [anon:NAME], and
//     private hugetlb): a page neither present nor swapped holds nothing;
//   - shared mappings of a file (shmem, memfd, files): the file's own holes
//     (SEEK_DATA), since a page this process never touched may still hold
//     data, and the data read from the file itself: the pages are the
//     file's page cache, and reading them through the process would map
//     them into it (its RssFile and page tables would grow);
//   - private mappings of a file: the pages the process wrote (anonymous
//     copies, which the page tables tell) from the process, the rest from
//     the file;
//   - everything else ([vdso]), and any file mapping where the file cannot
//     be opened (it takes /proc/PID/map_files, so CAP_SYS_ADMIN), or is no
//     regular file: all data, read as the kernel would.
//
// Past the end of the file, a file mapping is left to the kernel, which
// refuses it.
type layout struct {
	region  procfs.Region
	pm      *procfs.Pagemap // the Reader's, bound to its address space
	file    *os.File        // the mapped file, if it could be had (mapFiles)
	entry   *mapFile        // where file came from, given back on close
	files   *mapFiles
	anon    bool
	vdso    []byte // for [vdso]: the daemon's own, which its pages are, if they are
	avoided bool   // never read: a file on the avoided device (Reader.Avoid), or [vvar]

	capture *CaptureLayout // for captured memory: where the region's bytes are kept
	data    *os.File       // the capture's data
}

// newLayout prepares the layout of region r; mappings of files on the
// avoided device are never read.
func (rd *Reader) newLayout(r procfs.Region) *layout {
	if rd.capture != nil {
		cl := captureLayout(rd.capture, r)
		return &layout{region: r, capture: &cl, data: rd.capture.Data(), file: cl.File}
	}
	// [vvar]: refused without asking; [vsyscall] is refused for its
	// address (ErrAddressRange) when read.
	if rd.avoid != "" && r.Dev == rd.avoid && r.Inode != 0 || r.Unreadable() && r.Start < MaxAddress {
		return &layout{region: r, pm: rd.pm, avoided: true}
	}
	l := &layout{region: r, pm: rd.pm, anon: isPrivateAnon(r)}
	switch {
	case r.Path == "[vdso]":
		l.vdso = rd.ownVDSO(r)
	case !l.anon && r.Path != "" && !r.Pseudo() && r.Inode != 0:
		// Without the rights to open it: all data, read through the process.
		l.files, l.entry = &rd.files, rd.files.get(r)
		l.file = l.entry.f
	}
	return l
}

func (l *layout) close() {
	if l.entry != nil {
		l.files.put(l.entry)
		l.entry, l.file = nil, nil
	}
}

// alive reports ErrGone once the address space the layout's pagemap was
// opened on is gone (the process exited or execed); a capture never goes.
func (l *layout) alive() error {
	if l.capture != nil {
		return nil
	}
	_, err := l.pm.Scan(l.region.Start, l.region.Start+1)
	if Classify(err) == Gone { // ESRCH, or EOF from pagemap entries
		return ErrGone
	}
	return nil
}

func isPrivateAnon(r procfs.Region) bool {
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

// segments returns the layout of [start, end), in order and without gaps.
func (l *layout) segments(start, end uint64) ([]segment, error) {
	switch {
	case l.avoided:
		return []segment{{start, end, unreadable}}, nil
	case l.capture != nil:
		return l.captureSegments(start, end)
	case l.anon:
		return l.anonSegments(start, end)
	case l.file != nil && l.region.Perms.Shared:
		return l.fileSegments(start, end)
	case l.file != nil:
		return l.privateFileSegments(start, end)
	case l.vdso != nil:
		return l.vdsoSegments(start, end)
	}
	return []segment{{start, end, data}}, nil
}

// fileEnd is where the mapped file ends inside [start, end): past it the
// kernel refuses reads.
func (l *layout) fileEnd(start, end uint64) (uint64, error) {
	st, err := l.file.Stat()
	if err != nil {
		return 0, err
	}
	off := uint64(l.fileOffset())
	if size := uint64(max(st.Size(), 0)); size > off {
		return max(min(size-off+l.region.Start, end), start), nil
	}
	return start, nil
}

// privateFileSegments: the pages the process wrote are anonymous copies,
// present (or swapped) and not the file's; every other page is the file's.
func (l *layout) privateFileSegments(start, end uint64) ([]segment, error) {
	fileEnd, err := l.fileEnd(start, end)
	if err != nil {
		return nil, err
	}
	ranges, err := l.pm.ScanFile(start, fileEnd)
	if err != nil {
		return nil, err
	}
	var segs segmentList
	at := start
	for _, r := range ranges {
		s, e := max(r.Start, start), min(r.End, fileEnd)
		segs.add(at, s, fromFile)
		if holdsData(r.Flags) && r.Flags&procfs.PageFile == 0 {
			segs.add(s, e, resident)
		} else {
			segs.add(s, e, fromFile)
		}
		at = max(at, e)
	}
	segs.add(at, fileEnd, fromFile)
	segs.add(fileEnd, end, data)
	return segs, nil
}

// segmentList builds a segment list, merging neighbours of one kind.
type segmentList []segment

func (s *segmentList) add(start, end uint64, kind segmentKind) {
	if start >= end {
		return
	}
	if n := len(*s); n > 0 && (*s)[n-1].kind == kind && (*s)[n-1].end == start {
		(*s)[n-1].end = end
		return
	}
	*s = append(*s, segment{start, end, kind})
}

// holdsData reports whether pages hold data of their own: present and not
// the zero page, or swapped out (guard markers are not swap).
func holdsData(f procfs.PageFlags) bool {
	return f&procfs.PagePresent != 0 && f&procfs.PageZero == 0 ||
		f&procfs.PageSwapped != 0 && f&procfs.PageGuard == 0
}

func (l *layout) anonSegments(start, end uint64) ([]segment, error) {
	return l.pageSegments(start, end, hole, func(f procfs.PageFlags) segmentKind {
		switch {
		case holdsData(f):
			return resident
		case f&procfs.PageGuard != 0:
			return unreadable
		}
		return hole // the zero page
	})
}

// pageSegments lays out [start, end) from the page tables: pages neither
// present nor swapped as absent, the others as kind says of their flags.
func (l *layout) pageSegments(start, end uint64, absent segmentKind, kind func(procfs.PageFlags) segmentKind) ([]segment, error) {
	ranges, err := l.pm.Scan(start, end)
	if err != nil {
		return nil, err
	}
	var segs segmentList
	at := start
	for _, r := range ranges {
		s, e := max(r.Start, start), min(r.End, end)
		segs.add(at, s, absent)
		segs.add(s, e, kind(r.Flags))
		at = max(at, e)
	}
	segs.add(at, end, absent)
	return segs, nil
}

func (l *layout) fileSegments(start, end uint64) ([]segment, error) {
	fileEnd, err := l.fileEnd(start, end)
	if err != nil {
		return nil, err
	}
	var segs segmentList
	if err := seekSegments(&segs, l.file, l.fileOffset(), l.region.Start, start, fileEnd, fromFile); err != nil {
		return nil, err
	}
	segs.add(max(start, fileEnd), end, data)
	return segs, nil
}

// fileOffset is where the region's first byte is in l.file.
func (l *layout) fileOffset() int64 {
	if l.capture != nil {
		return l.capture.FileOffset
	}
	return int64(l.region.Offset)
}

// seekSegments adds the segments of [start, end) whose bytes a file holds,
// base being the file offset of address at: its holes (SEEK_DATA,
// SEEK_HOLE) as holes, its data as kind.
func seekSegments(segs *segmentList, f *os.File, base int64, at, start, end uint64, kind segmentKind) error {
	toFile := func(addr uint64) int64 { return base + int64(addr-at) }
	toAddr := func(off int64) uint64 { return at + uint64(off-base) }
	pos := start
	for pos < end {
		d, err := unix.Seek(int(f.Fd()), toFile(pos), unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // a hole up to the end of the file
		}
		if err != nil {
			return err
		}
		h, err := unix.Seek(int(f.Fd()), d, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		ds, de := min(toAddr(d), end), min(toAddr(h), end)
		segs.add(pos, ds, hole)
		segs.add(ds, de, kind)
		if de <= pos {
			break
		}
		pos = de
	}
	segs.add(pos, end, hole)
	return nil
}

// vdsoSegments: the pages of [vdso] the process has touched are read from
// it (they are present, so reading faults nothing in); the others are the
// kernel's vDSO image, which the daemon has mapped too.
func (l *layout) vdsoSegments(start, end uint64) ([]segment, error) {
	return l.pageSegments(start, end, fromVDSO, func(procfs.PageFlags) segmentKind { return resident })
}

// readFile reads what the mapped file holds at addr.
func (l *layout) readFile(b []byte, addr uint64) (int, error) {
	r := l.region
	n, err := l.file.ReadAt(b, l.fileOffset()+int64(addr-r.Start))
	if n == len(b) {
		return n, nil
	}
	if errors.Is(err, io.EOF) { // truncated meanwhile: the kernel would fail there
		err = fmt.Errorf("read at 0x%x: past the end of %s: %w", addr+uint64(n), r.Path, unix.EIO)
	}
	return n, err
}

// fromProcess reports whether any segment is to be read from the
// process's memory, which fails once the process is gone; zeros, the
// mapped file and pages refused without asking would not notice.
func fromProcess(segs []segment) bool {
	for _, s := range segs {
		if s.kind == data || s.kind == resident {
			return true
		}
	}
	return false
}

// captureSegments: the bytes the capture holds of a region are its data,
// with the capture's own holes (pages the process had not touched, or a
// compressed run of zeros); the rest comes from the mapped file where the
// capture found it unchanged, and is a hole where it did not.
func (l *layout) captureSegments(start, end uint64) ([]segment, error) {
	r, c := l.region, l.capture
	inCore := r.Start + min(c.InCore, r.Size())
	var segs segmentList
	if start < inCore {
		if err := seekSegments(&segs, l.data, c.Offset, r.Start, start, min(end, inCore), fromCapture); err != nil {
			return nil, err
		}
	}
	from := max(start, inCore)
	if from >= end {
		return segs, nil
	}
	if l.file == nil {
		segs.add(from, end, hole)
		return segs, nil
	}
	fileEnd, err := l.fileEnd(from, end)
	if err != nil {
		return nil, err
	}
	if err := seekSegments(&segs, l.file, c.FileOffset, r.Start, from, fileEnd, fromFile); err != nil {
		return nil, err
	}
	segs.add(fileEnd, end, hole)
	return segs, nil
}

// readCapture reads what the capture holds at addr.
func (l *layout) readCapture(b []byte, addr uint64) (int, error) {
	n, err := l.data.ReadAt(b, l.capture.Offset+int64(addr-l.region.Start))
	if n < len(b) && errors.Is(err, io.EOF) { // a truncated capture: what it lacks is missing
		clear(b[n:])
		return len(b), nil
	}
	return n, err
}

// captureLayout is the layout of r, a captured region or part of one (a
// range the reader was asked for): the whole region's, moved to r's start.
func captureLayout(c Capture, r procfs.Region) CaptureLayout {
	whole, ok := procfs.RegionAt(c.Regions(), r.Start)
	if !ok {
		return CaptureLayout{}
	}
	cl := c.Layout(whole)
	delta := r.Start - whole.Start
	cl.InCore -= min(cl.InCore, delta)
	cl.Offset += int64(delta)
	cl.FileOffset += int64(delta)
	return cl
}
