package core

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// A Capture is a core file opened for reading: the address space it
// captured, for the memory layer (it is a memory.Capture), and what its
// notes tell of the process. Cores of every origin are read: the
// kernel's, gdb's gcore, procmem's own (which carry smaps, so they read
// as richly as the live process did), plain or compressed as
// systemd-coredump writes them.
type Capture struct {
	path        string   // the core file
	data        *os.File // the core, or where it was decompressed to
	compression string
	cut         bool      // the compressed stream ended early
	modTime     time.Time // the core file's
	owner       uint32    // the core file's owner
	elf         *elfCore
	facts       facts
	mappings    []procfs.Mapping // from procmem's smaps note, in address order
	regions     []procfs.Region
	layouts     []regionLayout // one per region
	files       map[string]*mappedFile
	sysroot     bool // mapped files are read under a sysroot
	problems    []string
}

var _ memory.Capture = (*Capture)(nil)

// OpenOptions are how a core is opened.
type OpenOptions struct {
	// CacheDir is where a compressed core is decompressed to, as a file
	// without a name (O_TMPFILE) that disappears with the Capture; ""
	// decompresses into memory (a memfd).
	CacheDir string
	// MemoryLimit bounds the data a compressed core may decompress into
	// memory; 0 is half the machine's RAM.
	MemoryLimit uint64
	// MaxSize bounds what a compressed core may decompress to, holes
	// included; 0 is no bound.
	MaxSize uint64
	// Sysroot is where the files the process mapped are looked for (a
	// copy of the machine the core was written on); "" is "/".
	Sysroot string
	// NoMappedFiles leaves the parts of file mappings that the core does
	// not hold as holes, never read from the files.
	NoMappedFiles bool
}

// regionLayout is where one region's bytes are, and what to say of it.
type regionLayout struct {
	memory.CaptureLayout
	source    Source
	noSegment bool // a part of an NT_FILE mapping without a PT_LOAD
}

// Source tells where a region's bytes come from.
type Source struct {
	Size      uint64 // the region's
	InCore    uint64 // how many of its first bytes the core holds
	File      string // the file the rest is read from, or ""
	Hole      string // why the rest is a hole, or "" if there is no rest
	NoSegment bool   // the core has no segment for it, only NT_FILE: its permissions are not known
}

func (s Source) String() string {
	rest := "from " + s.File
	if s.File == "" {
		rest = "missing: " + s.Hole
	}
	switch {
	case s.InCore == s.Size:
		return "in core"
	case s.NoSegment:
		return rest + " (no segment in the core: permissions unknown)"
	case s.InCore == 0:
		return rest
	}
	return fmt.Sprintf("in core to +%#x, then %s", s.InCore, rest)
}

// Open opens the core file at path: plain, or compressed with zstd, lz4
// or xz (told by its first bytes), which is decompressed once, in one
// pass, without writing anything to disk unless opts.CacheDir says
// where. A file that is no ELF core is an error wrapping ErrNotCore; a
// core cut short opens, its missing data holes, and Truncated says so.
func Open(path string, opts OpenOptions) (*Capture, error) {
	c, err := open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.path = path
	return c, nil
}

// Path is the core file's path, as it was opened.
func (c *Capture) Path() string { return c.path }

func open(path string, opts OpenOptions) (*Capture, error) {
	// O_NONBLOCK: a FIFO in place of a core must not hang the open.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: not a regular file", ErrNotCore)
	}
	c := &Capture{data: f, modTime: st.ModTime(), owner: st.Sys().(*syscall.Stat_t).Uid}
	if err := c.decompress(opts); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.read(opts); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// decompress replaces a compressed core's data by what it decompresses to.
func (c *Capture) decompress(opts OpenOptions) error {
	var magic [6]byte
	n, _ := c.data.ReadAt(magic[:], 0)
	c.compression = compressionOf(magic[:n])
	if c.compression == "" {
		return nil
	}
	limit := opts.MemoryLimit
	if limit == 0 {
		limit = halfRAM()
	}
	d, err := decompress(io.NewSectionReader(c.data, 0, 1<<62), c.compression, opts.CacheDir, limits{data: limit, size: opts.MaxSize})
	if err != nil {
		return err
	}
	c.data.Close()
	c.data = d.file
	if d.cut != nil {
		c.cut = true
		c.problems = append(c.problems, d.cut.Error())
	}
	return nil
}

// halfRAM is half the machine's memory.
func halfRAM() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 1 << 30
	}
	return uint64(si.Totalram) * uint64(si.Unit) / 2
}

// read reads the core's structure, notes and regions.
func (c *Capture) read(opts OpenOptions) error {
	st, err := c.data.Stat()
	if err != nil {
		return err
	}
	if c.elf, err = readELF(c.data, uint64(st.Size())); err != nil {
		if c.cut { // the stream's end is why
			return fmt.Errorf("%w (%s)", err, c.problems[0])
		}
		return err
	}
	c.facts = readFacts(c.elf)
	if c.facts.procmem {
		c.mappings = c.elf.smapsMappings(c.facts.smaps)
	}
	if err := c.readRegions(); err != nil {
		return err
	}
	c.layOut(opts)
	return nil
}

// readRegions makes the regions of the PT_LOADs, in address order, named
// from procmem's smaps note or else from NT_FILE; and of the mappings the
// notes tell of that no PT_LOAD covers.
func (c *Capture) readRegions() error {
	loads := slices.DeleteFunc(slices.Clone(c.elf.loads), func(l elfLoad) bool { return l.memsz == 0 })
	sort.SliceStable(loads, func(i, j int) bool { return loads[i].vaddr < loads[j].vaddr })
	for i, l := range loads {
		end, ok := add(l.vaddr, l.memsz)
		if !ok {
			return fmt.Errorf("%w: a segment at %#x of %#x bytes ends past 2^64", ErrNotCore, l.vaddr, l.memsz)
		}
		if i > 0 && l.vaddr < loads[i-1].vaddr+loads[i-1].memsz {
			return fmt.Errorf("%w: the segments at %#x and %#x overlap", ErrNotCore, loads[i-1].vaddr, l.vaddr)
		}
		if l.filesz > l.memsz {
			c.elf.problem("the segment at %#x holds %#x bytes of its %#x", l.vaddr, l.filesz, l.memsz)
			l.filesz = l.memsz
		}
		r := procfs.Region{Start: l.vaddr, End: end, Perms: procfs.Perms{
			Read: l.flags&elf.PF_R != 0, Write: l.flags&elf.PF_W != 0, Exec: l.flags&elf.PF_X != 0}}
		c.regions = append(c.regions, c.name(r))
		c.layouts = append(c.layouts, regionLayout{CaptureLayout: memory.CaptureLayout{
			Offset: int64(min(l.offset, 1<<62)), InCore: l.filesz}})
	}
	c.addUnloadedRegions()
	return nil
}

// addUnloadedRegions adds a region, without data, for each mapping the
// core tells of but has no PT_LOAD for: procmem's smaps name [vvar] and
// [vsyscall], which it does not dump; gdb's gcore writes no segment for a
// file mapping it leaves out, and NT_FILE names it. The parts of NT_FILE's
// mappings are read from their files; their permissions are not told:
// they show as r--. Mappings that overlap one before them (a lying note's
// may) are cut.
func (c *Capture) addUnloadedRegions() {
	loaded := c.regions
	var added []procfs.Region // in address order, as told is
	var covered uint64        // the regions added so far end here
	for _, m := range c.untold() {
		at := max(m.Start, covered)
		i := sort.Search(len(loaded), func(i int) bool { return loaded[i].End > at })
		for at < m.End {
			end := m.End
			if i < len(loaded) && loaded[i].Start <= at {
				at = loaded[i].End
				i++
				continue
			}
			if i < len(loaded) {
				end = min(end, loaded[i].Start)
			}
			r := m
			r.Start, r.End = at, end
			if r.Inode != 0 || c.mappings == nil {
				r.Offset = m.Offset + (at - m.Start)
			}
			added = append(added, r)
			at, covered = end, end
		}
	}
	if len(added) == 0 {
		return
	}
	// Merge the two ordered lists.
	regions := make([]procfs.Region, 0, len(loaded)+len(added))
	layouts := make([]regionLayout, 0, len(loaded)+len(added))
	for i, j := 0, 0; i < len(loaded) || j < len(added); {
		if j == len(added) || i < len(loaded) && loaded[i].Start < added[j].Start {
			regions, layouts = append(regions, loaded[i]), append(layouts, c.layouts[i])
			i++
			continue
		}
		regions, layouts = append(regions, added[j]), append(layouts, regionLayout{noSegment: c.mappings == nil})
		j++
	}
	c.regions, c.layouts = regions, layouts
}

// untold are the mappings the notes tell of, in address order: procmem's
// smaps, or else NT_FILE's.
func (c *Capture) untold() []procfs.Region {
	var told []procfs.Region
	if c.mappings != nil {
		for _, m := range c.mappings {
			told = append(told, m.Region)
		}
		return told
	}
	for _, f := range c.facts.files {
		told = append(told, procfs.Region{Start: f.Start, End: f.End, Perms: procfs.Perms{Read: true}, Offset: f.Offset, Path: f.Path})
	}
	return told
}

// name gives region r what the core tells of it: its maps line from
// procmem's smaps, or else the file NT_FILE says it maps, or [vdso] where
// the auxiliary vector says the vDSO is, or [vsyscall] where x86-64 keeps
// it.
func (c *Capture) name(r procfs.Region) procfs.Region {
	i := sort.Search(len(c.mappings), func(i int) bool { return c.mappings[i].End > r.Start })
	if i < len(c.mappings) && c.mappings[i].Start == r.Start && c.mappings[i].End == r.End {
		return c.mappings[i].Region
	}
	files := c.facts.files
	i = sort.Search(len(files), func(i int) bool { return files[i].End > r.Start })
	switch {
	case i < len(files) && files[i].Start <= r.Start && r.End <= files[i].End:
		r.Path = files[i].Path
		r.Offset = files[i].Offset + (r.Start - files[i].Start)
	case c.auxValue(33) != 0 && r.Contains(c.auxValue(33)): // AT_SYSINFO_EHDR: the vDSO's ELF header
		r.Path = "[vdso]"
	case c.elf.machine == elf.EM_X86_64 && r.Start == 0xffffffffff600000: // fixed by the ABI
		r.Path = "[vsyscall]"
	}
	return r
}

// auxValue is the value of the auxiliary vector's entry typ, or 0.
func (c *Capture) auxValue(typ uint64) uint64 {
	for _, e := range c.facts.auxv {
		if e.Type == typ {
			return e.Value
		}
	}
	return 0
}

// layOut decides where each region's bytes are: the first filesz bytes
// in the core (fewer if the core is cut short), the rest from the mapped
// file when it is there as it was, or a hole.
func (c *Capture) layOut(opts OpenOptions) {
	size := c.elf.size
	for i, r := range c.regions {
		l := &c.layouts[i]
		want := l.InCore
		l.InCore = 0
		if off := uint64(l.Offset); off < size {
			l.InCore = min(want, size-off)
		}
		l.source = Source{Size: r.Size(), InCore: l.InCore, NoSegment: l.noSegment}
		switch {
		case l.InCore < want:
			l.source.Hole = "the core is cut short"
		case l.InCore == r.Size():
		case !mapsFile(r):
			l.source.Hole = "left out of the core"
		}
	}
	c.files, c.sysroot = map[string]*mappedFile{}, opts.Sysroot != ""
	mapping := map[string][]int{} // the regions that map each file
	for i, r := range c.regions {
		if mapsFile(r) {
			mapping[r.Path] = append(mapping[r.Path], i)
		}
	}
	for i, r := range c.regions {
		l := &c.layouts[i]
		if l.source.Hole != "" || l.InCore == r.Size() {
			continue
		}
		mf := c.mappedFile(r.Path, mapping[r.Path], opts)
		if mf.file == nil {
			l.source.Hole = mf.why
			continue
		}
		l.File, l.FileOffset = mf.file, int64(min(r.Offset, 1<<62))
		l.source.File = r.Path
	}
}

// mapsFile reports whether region r maps a file that may still be there.
func mapsFile(r procfs.Region) bool {
	return len(r.Path) > 0 && r.Path[0] == '/' && !r.Pseudo()
}

// Regions are the captured mappings in address order. A kernel's or
// gdb's core tells a region's bounds, its r, w and x, from NT_FILE the
// file it maps and where in it, and from the auxiliary vector where
// [vdso] is; not whether it is shared (all show as private), nor its
// device and inode, nor [heap] or [stack]. A core procmem wrote tells all
// that maps does.
func (c *Capture) Regions() []procfs.Region { return c.regions }

// Layout tells where the bytes of region r, one of Regions, are kept; a
// region not of the capture is all hole.
func (c *Capture) Layout(r procfs.Region) memory.CaptureLayout {
	if i, ok := c.index(r); ok {
		return c.layouts[i].CaptureLayout
	}
	return memory.CaptureLayout{}
}

// Source tells where region r's bytes come from, for info.
func (c *Capture) Source(r procfs.Region) Source {
	if i, ok := c.index(r); ok {
		return c.layouts[i].source
	}
	return Source{Size: r.Size(), Hole: "not in the core"}
}

func (c *Capture) index(r procfs.Region) (int, bool) {
	i := sort.Search(len(c.regions), func(i int) bool { return c.regions[i].End > r.Start })
	return i, i < len(c.regions) && c.regions[i].Start == r.Start && c.regions[i].End == r.End
}

// Data holds the captured bytes: the core file itself, or where it was
// decompressed to. Its holes are memory without data.
func (c *Capture) Data() *os.File { return c.data }

// Close releases the core and the mapped files held open.
func (c *Capture) Close() error {
	for _, mf := range c.files {
		if mf.file != nil {
			mf.file.Close()
		}
	}
	return c.data.Close()
}

// Compression is the format the core was compressed with, or "".
func (c *Capture) Compression() string { return c.compression }

// Truncated reports whether the core is cut short: its segments say it
// holds more than it does (systemd-coredump cuts cores past its size
// limit), or its compressed stream ended early. The missing data is holes.
func (c *Capture) Truncated() bool {
	return c.elf.end > c.elf.size || c.cut
}

// Size is the size of the core as its headers describe it.
func (c *Capture) Size() uint64 { return c.elf.end }

// Warnings are what was wrong in the core but could be passed over.
func (c *Capture) Warnings() []string { return slices.Concat(c.problems, c.elf.problems) }

// Machine is the machine the process ran on.
func (c *Capture) Machine() elf.Machine { return c.elf.machine }

// Origin tells what wrote the core, as far as it shows: "procmem" (its
// smaps note), "gdb" (section headers, which gcore writes and the kernel
// does not), or "kernel" (neither: the kernel's dumper, or a tool that
// writes as it does).
func (c *Capture) Origin() string {
	switch {
	case c.facts.procmem:
		return "procmem"
	case c.elf.sections:
		return "gdb"
	}
	return "kernel"
}

// Process is what NT_PRPSINFO tells of the process; false if the core has
// none.
func (c *Capture) Process() (Process, bool) { return c.facts.process, c.facts.hasProcess }

// Threads are the threads of the NT_PRSTATUS notes, the one that got the
// signal first (as the kernel writes them).
func (c *Capture) Threads() []Thread { return c.facts.threads }

// RegisterNames names the registers of Thread.Registers, for the
// machines procmem knows (x86-64, i386); nil for others.
func (c *Capture) RegisterNames() []string { return registerNames(c.elf.machine) }

// Signal is what NT_SIGINFO tells of the signal the process died of;
// false if the core has none (procmem's cores of live processes).
func (c *Capture) Signal() (Signal, bool) { return c.facts.signal, c.facts.hasSignal }

// Auxv is the auxiliary vector.
func (c *Capture) Auxv() []AuxEntry { return c.facts.auxv }

// Files are the file mappings of NT_FILE, in address order.
func (c *Capture) Files() []MappedFile { return c.facts.files }

// Smaps is /proc/PID/smaps as the process had it when procmem wrote the
// core, or nil for cores from elsewhere.
func (c *Capture) Smaps() []byte { return c.facts.smaps }

// Executable is the path of the program the process ran: the file
// mapped where the auxiliary vector says its program headers are
// (AT_PHDR), or its entry point (AT_ENTRY); else the command name of
// NT_PRPSINFO, which is no path.
func (c *Capture) Executable() string {
	for _, typ := range []uint64{3, 9} { // AT_PHDR, AT_ENTRY
		if r, ok := procfs.RegionAt(c.regions, c.auxValue(typ)); ok && mapsFile(r) {
			return r.Path
		}
	}
	return c.facts.process.Name
}

// ModTime is when the core file was last written.
func (c *Capture) ModTime() time.Time { return c.modTime }
