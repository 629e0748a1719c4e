package procfs

// This file reads /proc/PID/maps, described in proc_pid_maps(5).

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Perms are the four permission characters of a mapping: "rwxp" or "rwxs".
type Perms struct {
	Read, Write, Exec, Shared bool
}

func (p Perms) String() string {
	b := []byte("---p")
	if p.Read {
		b[0] = 'r'
	}
	if p.Write {
		b[1] = 'w'
	}
	if p.Exec {
		b[2] = 'x'
	}
	if p.Shared {
		b[3] = 's'
	}
	return string(b)
}

func parsePerms(s string) (Perms, bool) {
	if len(s) != 4 {
		return Perms{}, false
	}
	var p Perms
	for i, want := range []byte("rwx") {
		switch s[i] {
		case want:
			switch i {
			case 0:
				p.Read = true
			case 1:
				p.Write = true
			case 2:
				p.Exec = true
			}
		case '-':
		default:
			return Perms{}, false
		}
	}
	switch s[3] {
	case 's':
		p.Shared = true
	case 'p':
	default:
		return Perms{}, false
	}
	return p, true
}

// Region is one line of /proc/PID/maps: a virtual memory area.
type Region struct {
	Start, End uint64 // [Start, End)
	Perms      Perms
	Offset     uint64 // offset into the mapped file
	Dev        string // major:minor of the mapped file's device, in hex
	Inode      uint64
	Path       string // pathname, pseudo-path such as "[heap]", or ""
}

// Size is the length of the region in bytes.
func (r Region) Size() uint64 { return r.End - r.Start }

// Contains reports whether addr lies inside the region.
func (r Region) Contains(addr uint64) bool { return addr >= r.Start && addr < r.End }

// Deleted reports whether the mapped file was deleted after mapping.
func (r Region) Deleted() bool { return strings.HasSuffix(r.Path, " (deleted)") }

// Pseudo reports whether the pathname is a kernel-made name in brackets,
// such as [heap], [stack], [vdso] or [anon:NAME].
func (r Region) Pseudo() bool {
	return strings.HasPrefix(r.Path, "[") && strings.HasSuffix(r.Path, "]")
}

// MapsFile reports whether the region maps a file named by its pathname:
// a live mapping with an inode, or a captured one with an absolute path
// (a kernel core names files without their inodes).
func (r Region) MapsFile() bool {
	return r.Path != "" && !r.Pseudo() && (r.Inode != 0 || strings.HasPrefix(r.Path, "/"))
}

// Named reports whether name names the region: its pathname, or for a
// mapped file also the base name of its path ("libc.so.6" for
// /usr/lib/x86_64-linux-gnu/libc.so.6), as address expressions name
// modules.
func (r Region) Named(name string) bool {
	if r.Path == name {
		return true
	}
	return name != "" && r.MapsFile() && !strings.Contains(name, "/") && filepath.Base(r.Path) == name
}

// Unreadable reports whether /proc/PID/mem reads none of the region:
// [vvar] and [vvar_vclock] (EIO), and [vsyscall], above the reach of its
// signed offsets.
func (r Region) Unreadable() bool {
	return r.Path == "[vvar]" || r.Path == "[vvar_vclock]" || r.Start > math.MaxInt64
}

// RegionAt returns the region of a sorted list that holds addr.
func RegionAt(regions []Region, addr uint64) (Region, bool) {
	i := sort.Search(len(regions), func(i int) bool { return regions[i].End > addr })
	if i < len(regions) && regions[i].Start <= addr {
		return regions[i], true
	}
	return Region{}, false
}

// Label is the region's bounds and, if it has one, its pathname, for
// messages.
func (r Region) Label() string {
	if r.Path == "" {
		return r.Name()
	}
	return r.Name() + " " + r.Path
}

// Name is the first column of maps formatted the way procmem names region
// files: %012x-%012x.
func (r Region) Name() string {
	// By hand rather than with fmt: a listing names 60,000 regions.
	var b [2*16 + 1]byte
	n := putHex(b[:0], r.Start)
	n = append(n, '-')
	return string(putHex(n, r.End))
}

// putHex appends v in lower-case hex, at least 12 digits.
func putHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	w := 12
	for v>>(4*w) != 0 && w < 16 {
		w++
	}
	for i := w - 1; i >= 0; i-- {
		b = append(b, digits[v>>(4*i)&0xf])
	}
	return b
}

func parseMaps(r io.Reader) ([]Region, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return parseMapsText(string(b))
}

// parseMapsText parses the whole text of maps. The regions' Dev and Path
// share its memory: a process with 60,000 regions is parsed with a few
// allocations, not one per line.
func parseMapsText(text string) ([]Region, error) {
	regions := make([]Region, 0, strings.Count(text, "\n")+1)
	for n := 1; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		region, err := parseMapsLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: maps line %d: %v", ErrParse, n, err)
		}
		regions = append(regions, region)
	}
	return regions, nil
}

// parseMapsLine parses one maps line. The pathname is whatever follows the
// inode after the kernel's column padding, so it may contain spaces.
func parseMapsLine(line string) (Region, error) {
	var fields [5]string
	rest := line
	for i := range fields {
		rest = strings.TrimLeft(rest, " ")
		end := strings.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		fields[i], rest = rest[:end], rest[end:]
		if fields[i] == "" {
			return Region{}, fmt.Errorf("%q: too few fields", line)
		}
	}
	var r Region
	var ok bool
	r.Start, r.End, ok = parseRange(fields[0])
	if !ok {
		return Region{}, fmt.Errorf("%q: bad address range", line)
	}
	if r.Perms, ok = parsePerms(fields[1]); !ok {
		return Region{}, fmt.Errorf("%q: bad permissions", line)
	}
	var err error
	if r.Offset, err = strconv.ParseUint(fields[2], 16, 64); err != nil {
		return Region{}, fmt.Errorf("%q: bad offset", line)
	}
	if strings.Count(fields[3], ":") != 1 {
		return Region{}, fmt.Errorf("%q: bad device", line)
	}
	r.Dev = fields[3]
	if r.Inode, err = strconv.ParseUint(fields[4], 10, 64); err != nil {
		return Region{}, fmt.Errorf("%q: bad inode", line)
	}
	r.Path = strings.TrimLeft(rest, " ")
	return r, nil
}

// parseRange parses "START-END" in hex with START < END.
func parseRange(s string) (start, end uint64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseUint(a, 16, 64)
	end, err2 := strconv.ParseUint(b, 16, 64)
	if err1 != nil || err2 != nil || start >= end {
		return 0, 0, false
	}
	return start, end, true
}

// ParseRegionName parses a region file name as made by Region.Name. It
// accepts only the canonical spelling, so one region has one name.
func ParseRegionName(name string) (start, end uint64, ok bool) {
	start, end, ok = parseRange(name)
	if !ok || name != (Region{Start: start, End: end}).Name() {
		return 0, 0, false
	}
	return start, end, true
}
