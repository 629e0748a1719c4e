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
	hole       segmentKind = iota // holds no data: reads as zeros, left untouched
	data                          // read from memory
	resident                      // data in pages the page tables show present or swapped
	unreadable                    // a guard region: reads fail with EIO
	fromFile                      // data the mapped file holds: read from the file, not the process
	fromVDSO                      // a page of [vdso] the process never touched: the daemon's own copy
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
}

// newLayout prepares the layout of region r; mappings of files on the
// avoided device are never read.
func (rd *Reader) newLayout(r procfs.Region) *layout {
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
// opened on is gone (the process exited or execed).
func (l *layout) alive() error {
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
	r := l.region
	if size := uint64(max(st.Size(), 0)); size > r.Offset {
		return max(min(size-r.Offset+r.Start, end), start), nil
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
	ranges, err := l.pm.Scan(start, end)
	if err != nil {
		return nil, err
	}
	var segs segmentList
	at := start
	for _, r := range ranges {
		s, e := max(r.Start, start), min(r.End, end)
		segs.add(at, s, hole)
		switch {
		case holdsData(r.Flags):
			segs.add(s, e, resident)
		case r.Flags&procfs.PageGuard != 0:
			segs.add(s, e, unreadable)
		default:
			segs.add(s, e, hole) // the zero page
		}
		at = max(at, e)
	}
	segs.add(at, end, hole)
	return segs, nil
}

func (l *layout) fileSegments(start, end uint64) ([]segment, error) {
	fileEnd, err := l.fileEnd(start, end)
	if err != nil {
		return nil, err
	}
	r := l.region
	toFile := func(addr uint64) int64 { return int64(r.Offset + addr - r.Start) }
	toAddr := func(off int64) uint64 { return uint64(off) - r.Offset + r.Start }
	var segs segmentList
	at := start
	for at < fileEnd {
		d, err := unix.Seek(int(l.file.Fd()), toFile(at), unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // a hole up to the end of the file
		}
		if err != nil {
			return nil, err
		}
		h, err := unix.Seek(int(l.file.Fd()), d, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		ds, de := min(toAddr(d), fileEnd), min(toAddr(h), fileEnd)
		segs.add(at, ds, hole)
		segs.add(ds, de, fromFile)
		if de <= at {
			break
		}
		at = de
	}
	segs.add(at, fileEnd, hole)
	segs.add(max(at, fileEnd), end, data)
	return segs, nil
}

// vdsoSegments: the pages of [vdso] the process has touched are read from
// it (they are present, so reading faults nothing in); the others are the
// kernel's vDSO image, which the daemon has mapped too.
func (l *layout) vdsoSegments(start, end uint64) ([]segment, error) {
	ranges, err := l.pm.Scan(start, end)
	if err != nil {
		return nil, err
	}
	var segs segmentList
	at := start
	for _, r := range ranges {
		s, e := max(r.Start, start), min(r.End, end)
		segs.add(at, s, fromVDSO)
		segs.add(s, e, resident)
		at = max(at, e)
	}
	segs.add(at, end, fromVDSO)
	return segs, nil
}

// readFile reads what the mapped file holds at addr.
func (l *layout) readFile(b []byte, addr uint64) (int, error) {
	r := l.region
	n, err := l.file.ReadAt(b, int64(r.Offset+addr-r.Start))
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
