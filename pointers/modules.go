package pointers

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/addrexpr"
	"github.com/procmem/procmem/procfs"
)

// Range is the addresses [Start, End).
type Range struct {
	Start uint64 `json:"start"`
	End   uint64 `json:"end"`
}

func (r Range) contains(addr uint64) bool { return addr >= r.Start && addr < r.End }

// Module is a file mapped in one run: where it is loaded, and where its
// static data lies.
type Module struct {
	Path   string  `json:"path"`
	Base   uint64  `json:"base"`             // the load base: the start of its lowest mapping
	Static []Range `json:"static,omitempty"` // its writable segments, as offsets from Base
	Main   bool    `json:"main,omitempty"`   // the program itself, not a library
}

// FileOpener opens the file a region maps, to read its program headers
// when memory does not have them; nil when there is no file to open.
type FileOpener func(r procfs.Region) (io.ReaderAt, func(), error)

// FindModules lists the modules among regions, the program (mainPath)
// marked, each with its static data. The program headers are read from
// the module's first page in memory, where the dynamic linker mapped them,
// or from the file when memory does not hold them (a capture without
// them). A module that is no ELF file (a mapped font, a locale archive)
// has no static data.
func FindModules(regions []procfs.Region, mainPath string, mem addrexpr.Memory, open FileOpener) []Module {
	var mods []Module
	seen := map[string]bool{}
	for _, r := range regions {
		if !r.MapsFile() || seen[r.Path] {
			continue
		}
		seen[r.Path] = true
		m := Module{Path: r.Path, Base: r.Start, Main: r.Path == mainPath}
		if segs, err := moduleSegments(r, regions, mem, open); err == nil {
			m.Static = staticRanges(segs, uint64(os.Getpagesize()))
		}
		mods = append(mods, m)
	}
	return mods
}

// moduleSegments reads the loadable segments of the module whose lowest
// mapping is r.
func moduleSegments(r procfs.Region, regions []procfs.Region, mem addrexpr.Memory, open FileOpener) ([]segment, error) {
	if r.Offset != 0 {
		return nil, fmt.Errorf("%w: %s is mapped from offset %#x", ErrNotELF, r.Path, r.Offset)
	}
	read := func(b []byte, off uint64) error { return mem.ReadRange(b, r.Start+off, regions) }
	segs, err := readSegments(read)
	if err == nil || errors.Is(err, ErrNotELF) && !allZero(read) || open == nil {
		return segs, err
	}
	f, done, err := open(r)
	if err != nil {
		return nil, err
	}
	defer done()
	return readSegments(func(b []byte, off uint64) error {
		_, err := f.ReadAt(b, int64(off))
		return err
	})
}

// allZero reports whether the first bytes read as zeros: memory a capture
// did not keep.
func allZero(read func([]byte, uint64) error) bool {
	var b [elfHeaderSize]byte
	if read(b[:], 0) != nil {
		return true
	}
	return b == [elfHeaderSize]byte{}
}

// readSegments reads the ELF header and program headers through read.
func readSegments(read func(b []byte, off uint64) error) ([]segment, error) {
	var hb [elfHeaderSize]byte
	if err := read(hb[:], 0); err != nil {
		return nil, err
	}
	h, err := parseELFHeader(hb[:])
	if err != nil {
		return nil, err
	}
	b := make([]byte, h.size())
	if err := read(b, h.phoff); err != nil {
		return nil, err
	}
	return parseProgramHeaders(h, b)
}

// LiveFiles opens the files of a live process's modules: through
// /proc/PID/map_files (which takes CAP_SYS_ADMIN), else by path, if the
// file there is still the one mapped (same inode).
func LiveFiles(p *procfs.Process) FileOpener {
	return func(r procfs.Region) (io.ReaderAt, func(), error) {
		f, err := p.OpenMapFile(r)
		if err != nil {
			if f, err = os.Open(r.Path); err != nil {
				return nil, nil, err
			}
			var st unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Ino != r.Inode {
				f.Close()
				return nil, nil, fmt.Errorf("%s: not the file mapped", r.Path)
			}
		}
		return f, func() { f.Close() }, nil
	}
}
