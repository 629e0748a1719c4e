package fs

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// Reading /proc/PID/mem has side effects on the target: an untouched page
// of anonymous memory gets page tables (on some kernels a real page), a
// hole of shmem or memfd gets allocated. procmem reads only what holds
// data and returns zeros for the rest, so pointing file tools at a large
// process changes nothing in it. The layout of a stretch of a region says
// which parts are which.

// segKind is what a stretch of a region holds.
type segKind int

const (
	segHole       segKind = iota // holds no data: reads as zeros, untouched
	segData                      // read from memory
	segUnreadable                // a guard region: reads fail with EIO
)

type segment struct {
	start, end uint64
	kind       segKind
}

// layoutSource tells the segments of a region; each kind of region has
// its own source of truth.
type layoutSource interface {
	layout(start, end uint64) ([]segment, error)
	Close() error
}

// allData is the layout of regions read as they are.
type allData struct{}

func (allData) layout(start, end uint64) ([]segment, error) {
	return []segment{{start, end, segData}}, nil
}

func (allData) Close() error { return nil }

// regionKind picks how to tell data from holes in a region:
//   - private anonymous memory (no file, [heap], [stack], [anon:NAME], and
//     private hugetlb): a page not present and not swapped holds nothing;
//   - shared mappings of a file (shmem, memfd, files, shared hugetlb): the
//     file's own holes (SEEK_DATA), since a page this process has not
//     touched may still hold data;
//   - everything else (private file mappings, [vdso]): all data.
func openLayout(p *procfs.Process, pm *procfs.Pagemap, r procfs.Region) layoutSource {
	if isPrivateAnon(r) {
		return &anonLayout{pm}
	}
	if r.Perms.Shared && r.Path != "" && !r.Pseudo() {
		f, err := p.OpenMapFile(r)
		if err != nil {
			return allData{} // no CAP_SYS_ADMIN: read everything, as the kernel would
		}
		return &fileLayout{f: f, region: r}
	}
	return allData{}
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

// anonLayout reads the page tables through pagemap.
type anonLayout struct{ pm *procfs.Pagemap }

// Close leaves the pagemap to the handle, which owns it.
func (a *anonLayout) Close() error { return nil }

func (a *anonLayout) layout(start, end uint64) ([]segment, error) {
	ranges, err := a.pm.Scan(start, end)
	if err != nil {
		return nil, err
	}
	var segs []segment
	add := func(s, e uint64, kind segKind) {
		if s >= e {
			return
		}
		if n := len(segs); n > 0 && segs[n-1].kind == kind && segs[n-1].end == s {
			segs[n-1].end = e
			return
		}
		segs = append(segs, segment{s, e, kind})
	}
	at := start
	for _, r := range ranges {
		s, e := max(r.Start, start), min(r.End, end)
		add(at, s, segHole)
		switch {
		case r.HoldsData():
			add(s, e, segData)
		case r.Flags&procfs.PageGuard != 0:
			add(s, e, segUnreadable)
		default:
			add(s, e, segHole) // the zero page
		}
		at = e
	}
	add(at, end, segHole)
	return segs, nil
}

// fileLayout asks the mapped file where its data is.
type fileLayout struct {
	f      *os.File
	region procfs.Region
}

func (l *fileLayout) Close() error { return l.f.Close() }

func (l *fileLayout) layout(start, end uint64) ([]segment, error) {
	st, err := l.f.Stat()
	if err != nil {
		return nil, err
	}
	// File offsets of the stretch; past the end of the file the kernel
	// fails the read (SIGBUS territory), so that part is left as data.
	toFile := func(addr uint64) int64 { return int64(l.region.Offset + addr - l.region.Start) }
	toAddr := func(off int64) uint64 { return uint64(off) - l.region.Offset + l.region.Start }
	eof := uint64(max(st.Size(), 0))
	var segs []segment
	at := start
	for at < end && uint64(toFile(at)) < eof {
		data, err := unix.Seek(int(l.f.Fd()), toFile(at), unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole up to the end of the file
		}
		if err != nil {
			return nil, err
		}
		hole, err := unix.Seek(int(l.f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		ds, de := min(toAddr(data), end), min(toAddr(hole), end)
		if at < ds {
			segs = append(segs, segment{at, ds, segHole})
		}
		if ds < de {
			segs = append(segs, segment{ds, de, segData})
		}
		at = max(de, at+1)
	}
	if fileEnd := toAddr(int64(eof)); at < end {
		if at < fileEnd {
			segs = append(segs, segment{at, min(fileEnd, end), segHole})
			at = min(fileEnd, end)
		}
		if at < end {
			segs = append(segs, segment{at, end, segData})
		}
	}
	return segs, nil
}

// readSegments fills b, which holds memory from addr on, segment by
// segment: data from memory, zeros for holes. It stops at the first part
// that cannot be read and returns what came before it.
func readSegments(m *procfs.Mem, b []byte, addr uint64, segs []segment) (int, error) {
	done := 0
	for _, s := range segs {
		part := b[s.start-addr : s.end-addr]
		switch s.kind {
		case segHole:
			clear(part)
			done += len(part)
			continue
		case segUnreadable:
			if done > 0 {
				return done, nil
			}
			return 0, unix.EIO
		}
		n, err := m.ReadFull(part, s.start)
		done += n
		if err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
	}
	return done, nil
}
