package core

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// The fixtures of testdata (README says how they were made): one process
// of corefixture.c, its cores by procmem, gcore and the kernel, and the
// kernel's compressed three ways.

const fixtureDir = "/tmp/procmem-fixture" // where the fixture's files were when its cores were written

// fixtureAddrs reads what corefixture printed: its pid and the addresses
// of its markers.
func fixtureAddrs(t *testing.T) map[string]uint64 {
	t.Helper()
	f, err := os.Open("testdata/fixture.addrs")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	addrs := map[string]uint64{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		key, value, _ := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseUint(strings.TrimPrefix(value, "0x"), 16, 64)
		if key == "pid" {
			n, err = strconv.ParseUint(value, 10, 64)
		}
		if err != nil {
			t.Fatalf("fixture.addrs: %q: %v", sc.Text(), err)
		}
		addrs[key] = n
	}
	return addrs
}

func openFixture(t *testing.T, name string, opts OpenOptions) *Capture {
	t.Helper()
	c, err := Open(filepath.Join("testdata", name), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readCapture reads n bytes at addr as the memory layer reads a Capture:
// each region's first InCore bytes from Data, the rest from its File or
// zeros, zeros between regions.
func readCapture(t *testing.T, c *Capture, addr uint64, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		at := addr + uint64(i)
		r, ok := procfs.RegionAt(c.Regions(), at)
		if !ok {
			continue
		}
		l := c.Layout(r)
		into := at - r.Start
		var err error
		switch {
		case into < l.InCore:
			_, err = c.Data().ReadAt(b[i:i+1], l.Offset+int64(into))
		case l.File != nil:
			_, err = l.File.ReadAt(b[i:i+1], l.FileOffset+int64(into))
		}
		if err != nil && err != io.EOF {
			t.Fatalf("reading %#x: %v", at, err)
		}
	}
	return b
}

func wantMarker(t *testing.T, c *Capture, what string, addr uint64, marker string) {
	t.Helper()
	if got := readCapture(t, c, addr, len(marker)); string(got) != marker {
		t.Errorf("%s at %#x reads %q, want %q", what, addr, got, marker)
	}
}

var fixtureCores = []struct {
	name, origin, compression string
}{
	{"kernel.core", "kernel", ""},
	{"gcore.core", "gdb", ""},
	{"procmem.core", "procmem", ""},
	{"kernel.core.zst", "kernel", "zstd"},
	{"kernel.core.lz4", "kernel", "lz4"},
	{"kernel.core.xz", "kernel", "xz"},
}

// TestFixtures: every fixture opens, tells the process, its two threads,
// its executable and its mapped files, and reads the markers at their
// addresses.
func TestFixtures(t *testing.T) {
	addrs := fixtureAddrs(t)
	for _, fx := range fixtureCores {
		t.Run(fx.name, func(t *testing.T) {
			c := openFixture(t, fx.name, OpenOptions{})
			if c.Origin() != fx.origin || c.Compression() != fx.compression {
				t.Errorf("origin %q, compression %q; want %q, %q", c.Origin(), c.Compression(), fx.origin, fx.compression)
			}
			if c.Truncated() || len(c.Warnings()) > 0 {
				t.Errorf("truncated %v, warnings %q", c.Truncated(), c.Warnings())
			}
			p, ok := c.Process()
			if !ok || uint64(p.PID) != addrs["pid"] || p.Name != "corefixture" || !strings.HasPrefix(p.Args, fixtureDir+"/corefixture") /* gdb stops at the first NUL */ {
				t.Errorf("process %+v (%v)", p, ok)
			}
			threads := c.Threads()
			if len(threads) != 2 || uint64(threads[0].TID) != addrs["pid"] || len(threads[0].Registers) != len(c.RegisterNames()) {
				t.Errorf("threads %+v", threads)
			}
			if exe := c.Executable(); exe != fixtureDir+"/corefixture" {
				t.Errorf("executable %q", exe)
			}
			wantMarker(t, c, "the global", addrs["global"], "procmem fixture global marker")
			wantMarker(t, c, "the heap", addrs["heap"], "procmem fixture heap marker")
			wantMarker(t, c, "the anonymous mapping", addrs["anon"], "procmem fixture anon marker")
			wantMarker(t, c, "the mapped file's first page", addrs["file"], "\x7fELF procmem fixture file header")

			r, ok := procfs.RegionAt(c.Regions(), addrs["file"])
			if !ok || r.Path != fixtureDir+"/mapped.bin" || r.Start != addrs["file"] || r.Size() != 3*pageSize || r.Offset != 0 {
				t.Errorf("the region of the mapped file: %+v", r)
			}
			s := c.Source(r)
			if fx.origin != "gdb" && s.String() != "in core to +0x1000, then missing: "+fixtureDir+"/mapped.bin: not found" {
				t.Errorf("the mapped file, gone since: %+v: %s", s, s)
			}
			if got := readCapture(t, c, addrs["file"]+pageSize, 16); fx.origin != "gdb" && !bytes.Equal(got, make([]byte, 16)) {
				t.Errorf("the missing file's page reads %q, want zeros", got)
			}
			for _, r := range c.Regions() {
				if r.Path == "[vdso]" && (c.Source(r).String() != "in core" || !bytes.HasPrefix(readCapture(t, c, r.Start, 4), []byte("\x7fELF"))) {
					t.Errorf("[vdso] %+v: %s", r, c.Source(r))
				}
			}
			if vdso := regionNamed(c, "[vdso]"); vdso == nil {
				t.Error("no [vdso]")
			}
			files := c.Files()
			if len(files) < 5 || !containsFile(files, fixtureDir+"/corefixture") || !containsFile(files, fixtureDir+"/mapped.bin") {
				t.Errorf("NT_FILE: %+v", files)
			}
			for _, f := range files {
				if r, ok := procfs.RegionAt(c.Regions(), f.Start); !ok || r.Path != f.Path {
					t.Errorf("NT_FILE's %+v is region %+v", f, r)
				}
			}
		})
	}
}

func regionNamed(c *Capture, path string) *procfs.Region {
	for _, r := range c.Regions() {
		if r.Path == path {
			return &r
		}
	}
	return nil
}

func containsFile(files []MappedFile, path string) bool {
	for _, f := range files {
		if f.Path == path {
			return true
		}
	}
	return false
}

// TestFixtureKernelSignal: the kernel's core tells the signal and the
// address that faulted; gcore's and procmem's are of a live process.
func TestFixtureKernelSignal(t *testing.T) {
	c := openFixture(t, "kernel.core", OpenOptions{})
	s, ok := c.Signal()
	if !ok || s.Number != 11 || !s.HasAddr() || s.Addr != 0x10 {
		t.Errorf("signal %+v (%v), want SIGSEGV at 0x10", s, ok)
	}
	if th := c.Threads(); len(th) == 0 || th[0].Signal != 11 {
		t.Errorf("the first thread's signal: %+v", th)
	}
	if _, ok := c.Signal(); !ok {
		t.Error("no NT_SIGINFO")
	}
	if _, ok := openFixture(t, "procmem.core", OpenOptions{}).Signal(); ok {
		t.Error("procmem's core of a live process tells a signal")
	}
}

// TestFixtureProcmemSmaps: procmem's core names regions as maps does,
// [heap] and [stack] included, and carries smaps.
func TestFixtureProcmemSmaps(t *testing.T) {
	addrs := fixtureAddrs(t)
	c := openFixture(t, "procmem.core", OpenOptions{})
	heap, ok := procfs.RegionAt(c.Regions(), addrs["heap"])
	if !ok || heap.Path != "[heap]" || heap.Perms.String() != "rw-p" {
		t.Errorf("the heap's region: %+v", heap)
	}
	file, _ := procfs.RegionAt(c.Regions(), addrs["file"])
	if file.Inode == 0 || file.Dev == "" || file.Perms.String() != "r--p" {
		t.Errorf("the mapped file's region: %+v", file)
	}
	mappings, _, err := procfs.SmapsBlocks(c.Smaps())
	if err != nil || len(mappings) < len(c.Regions()) {
		t.Errorf("smaps: %d mappings for %d regions (%v)", len(mappings), len(c.Regions()), err)
	}
	// The kernel's core of the same process has the same regions, named
	// by NT_FILE as smaps names them; [heap], [stack] and [vvar] it does
	// not name.
	kernel := openFixture(t, "kernel.core", OpenOptions{})
	if k := kernel.Regions(); len(k) != len(mappings) {
		t.Errorf("the kernel's core has %d regions, smaps %d", len(k), len(mappings))
	} else {
		for i, r := range k {
			m := mappings[i]
			named := r.Path == m.Path || r.Path == "" && (m.Path == "" || m.Path == "[heap]" || m.Path == "[stack]" || strings.HasPrefix(m.Path, "[vvar"))
			if r.Start != m.Start || r.End != m.End || r.Perms.String()[:3] != m.Perms.String()[:3] || !named || r.Offset != m.Offset && r.Path != "" {
				t.Errorf("the kernel's core has %+v where smaps has %+v", r, m)
			}
		}
	}
	kheap, _ := procfs.RegionAt(kernel.Regions(), addrs["heap"])
	if kheap.Path != "" || kheap.Start != heap.Start || kheap.End != heap.End || kernel.Smaps() != nil {
		t.Errorf("the kernel core's heap: %+v, want unnamed %+v", kheap, heap)
	}
}

// TestFixtureMappedFile: the parts of a mapped file the core leaves out
// are read from the file when it is there as it was (here under a
// sysroot), and are holes, said so, when it changed since. The kernel and
// procmem keep the first page of mapped.bin (it starts with an ELF magic);
// gcore keeps all of it, but no segment at all of the program's text.
func TestFixtureMappedFile(t *testing.T) {
	addrs := fixtureAddrs(t)
	original, err := os.ReadFile("testdata/mapped.bin")
	if err != nil {
		t.Fatal(err)
	}
	program, err := os.ReadFile("testdata/corefixture")
	if err != nil {
		t.Fatal(err)
	}
	long := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	other := bytes.Clone(original)
	other[100] ^= 1 // the first page differs
	for _, tc := range []struct {
		name    string
		content []byte
		mtime   time.Time
		want    string
	}{
		{"unchanged", original, long, "in core to +0x1000, then from " + fixtureDir + "/mapped.bin"},
		{"modified after the core", original, time.Now().Add(time.Hour), "then missing: " + fixtureDir + "/mapped.bin: changed after the core was written"},
		{"another file", other, long, "then missing: " + fixtureDir + "/mapped.bin: another file now (its first page differs from the core's)"},
		{"shorter", original[:pageSize], long, "then missing: " + fixtureDir + "/mapped.bin: shorter (4096 bytes) than its mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, filepath.Join(root, fixtureDir, "mapped.bin"), tc.content, tc.mtime)
			writeFile(t, filepath.Join(root, fixtureDir, "corefixture"), program, long)
			for _, fx := range fixtureCores {
				c := openFixture(t, fx.name, OpenOptions{Sysroot: root})
				checkProgramText(t, c, program)
				r, _ := procfs.RegionAt(c.Regions(), addrs["file"])
				s := c.Source(r).String()
				if fx.origin == "gdb" {
					if s != "in core" {
						t.Errorf("%s: mapped.bin: %q, want all in core", fx.name, s)
					}
					continue
				}
				if !strings.Contains(s, tc.want) {
					t.Errorf("%s: %q, want %q", fx.name, s, tc.want)
				}
				marker := "procmem fixture file marker"
				got := string(readCapture(t, c, addrs["file"]+pageSize, len(marker)))
				if (got == marker) != (tc.name == "unchanged") {
					t.Errorf("%s: the file's second page reads %q", fx.name, got)
				}
			}
			if tc.name == "unchanged" {
				c := openFixture(t, "kernel.core", OpenOptions{Sysroot: root, NoMappedFiles: true})
				r, _ := procfs.RegionAt(c.Regions(), addrs["file"])
				if s := c.Source(r).String(); !strings.HasSuffix(s, "missing: mapped files are not read") {
					t.Errorf("NoMappedFiles: %q", s)
				}
			}
		})
	}
}

// TestMappedFileOwner: a file the core's owner could not read is not
// read for it, though whoever opens the core could.
func TestMappedFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	addrs := fixtureAddrs(t)
	original, err := os.ReadFile("testdata/mapped.bin")
	if err != nil {
		t.Fatal(err)
	}
	core, err := os.ReadFile("testdata/kernel.core")
	if err != nil {
		t.Fatal(err)
	}
	corePath := filepath.Join(t.TempDir(), "core")
	if err := os.WriteFile(corePath, core, 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	mapped := filepath.Join(root, fixtureDir, "mapped.bin")
	writeFile(t, mapped, original, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		owner int
		mode  os.FileMode
		want  string
	}{
		{0, 0o600, "then from " + fixtureDir + "/mapped.bin"},
		{65534, 0o644, "then from " + fixtureDir + "/mapped.bin"},
		{65534, 0o600, "then missing: " + fixtureDir + "/mapped.bin: not readable by all, nor the core owner's"},
	} {
		if err := os.Chown(corePath, tc.owner, tc.owner); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(mapped, tc.mode); err != nil {
			t.Fatal(err)
		}
		c, err := Open(corePath, OpenOptions{Sysroot: root})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := procfs.RegionAt(c.Regions(), addrs["file"])
		if s := c.Source(r).String(); !strings.HasSuffix(s, tc.want) {
			t.Errorf("a core of uid %d, the file %v: %s", tc.owner, tc.mode, s)
		}
		c.Close()
	}
}

// checkProgramText: the program's executable mapping (at file offset
// 0x1000), which no core holds, reads from the program file.
func checkProgramText(t *testing.T, c *Capture, program []byte) {
	t.Helper()
	for _, r := range c.Regions() {
		if r.Path != fixtureDir+"/corefixture" || r.Offset != pageSize {
			continue
		}
		s := c.Source(r)
		if s.InCore != 0 || s.File != r.Path || s.NoSegment != (c.Origin() == "gdb") {
			t.Errorf("%s: the program's text %+v: %+v", c.Origin(), r, s)
		}
		got := readCapture(t, c, r.Start, 64)
		if !bytes.Equal(got, program[pageSize:pageSize+64]) {
			t.Errorf("%s: the program's text reads % x, the file has % x", c.Origin(), got, program[pageSize:pageSize+64])
		}
		return
	}
	t.Errorf("%s: no region of the program's text", c.Origin())
}

func writeFile(t *testing.T, path string, content []byte, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// TestFixtureCompressed: each compressed form decompresses to the plain
// core byte for byte, and where the plain one has pages of zeros the
// decompressed one has holes.
func TestFixtureCompressed(t *testing.T) {
	plain, err := os.ReadFile("testdata/kernel.core")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, fx := range fixtureCores[3:] {
		for _, opts := range []OpenOptions{{}, {CacheDir: dir}} {
			c := openFixture(t, fx.name, opts)
			got, err := io.ReadAll(io.NewSectionReader(c.Data(), 0, 1<<40))
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("%s (%+v) decompresses to %d bytes (%v), differing from the plain core's %d", fx.name, opts, len(got), err, len(plain))
			}
			if data, want := dataBytes(t, c.Data()), nonZeroPages(plain); data != want {
				t.Errorf("%s (%+v): %d bytes of data, want %d: the pages of non-zero bytes", fx.name, opts, data, want)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("decompressing left %d files in the cache directory", len(entries))
	}
}

// dataBytes counts the bytes of f that SEEK_DATA and SEEK_HOLE show as
// data.
func dataBytes(t testing.TB, f *os.File) int64 {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for off := int64(0); off < st.Size(); {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		n += hole - data
		off = hole
	}
	return n
}

// nonZeroPages counts the bytes of b's pages that hold a non-zero byte.
func nonZeroPages(b []byte) int64 {
	var n int64
	for at := 0; at < len(b); at += pageSize {
		page := b[at:min(at+pageSize, len(b))]
		if !bytes.Equal(page, make([]byte, len(page))) {
			n += int64(len(page))
		}
	}
	return n
}
