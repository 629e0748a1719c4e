package core

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/procmem/procmem/procfs"
)

// Synthetic cores: built here byte by byte, so that each may lie in one
// way of its own.

type synthLoad struct {
	vaddr, memsz uint64
	data         []byte // its filesz bytes
	flags        uint32
	offset       uint64 // where its data goes; 0 places it after the last
	filesz       uint64 // 0: len(data)
}

type synthNote struct {
	name string
	typ  uint32
	desc []byte
}

// synthCore lays out a 64-bit little-endian x86-64 core: the header, a
// PT_NOTE, the loads' headers, the notes, then each load's data.
func synthCore(loads []synthLoad, notes []synthNote) []byte {
	le := binary.LittleEndian
	var noteBytes bytes.Buffer
	for _, n := range notes {
		namedNote(&noteBytes, n.name, n.typ, n.desc)
	}
	phnum := 1 + len(loads)
	notesOff := uint64(ehdrSize + phnum*phdrSize)
	at := align(notesOff+uint64(noteBytes.Len()), pageSize)
	b := make([]byte, ehdrSize+phnum*phdrSize)
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], 4)  // ET_CORE
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[32:], ehdrSize)
	le.PutUint16(b[52:], ehdrSize)
	le.PutUint16(b[54:], phdrSize)
	le.PutUint16(b[56:], uint16(phnum))
	phdr := func(i int, typ, flags uint32, off, vaddr, filesz, memsz uint64) {
		p := b[ehdrSize+i*phdrSize:]
		le.PutUint32(p, typ)
		le.PutUint32(p[4:], flags)
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], vaddr)
		le.PutUint64(p[32:], filesz)
		le.PutUint64(p[40:], memsz)
	}
	phdr(0, 4, 0, notesOff, 0, uint64(noteBytes.Len()), 0)
	var data []byte
	for i, l := range loads {
		off := l.offset
		if off == 0 {
			off = at
			at = align(at+uint64(len(l.data)), pageSize)
		}
		filesz := cmp.Or(l.filesz, uint64(len(l.data)))
		phdr(1+i, 1, cmp.Or(l.flags, 6), off, l.vaddr, filesz, l.memsz)
		if end := off + uint64(len(l.data)); end > uint64(len(data)) && off < 1<<30 {
			data = append(data, make([]byte, end-uint64(len(data)))...)
		}
		if off < 1<<30 {
			copy(data[off:], l.data)
		}
	}
	b = append(b, noteBytes.Bytes()...)
	if len(data) > len(b) {
		copy(data, b)
		return data
	}
	return b
}

// fileNoteOf is an NT_FILE of the given mappings.
func fileNoteOf(files ...MappedFile) []byte {
	le := binary.LittleEndian
	b := le.AppendUint64(nil, uint64(len(files)))
	b = le.AppendUint64(b, pageSize)
	for _, f := range files {
		b = le.AppendUint64(b, f.Start)
		b = le.AppendUint64(b, f.End)
		b = le.AppendUint64(b, f.Offset/pageSize)
	}
	for _, f := range files {
		b = append(append(b, f.Path...), 0)
	}
	return b
}

// openBytes opens the core b, written to a file.
func openBytes(t *testing.T, b []byte, opts OpenOptions) (*Capture, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "core")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path, opts)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func page(fill byte) []byte { return bytes.Repeat([]byte{fill}, pageSize) }

// TestSynthetic: a core of a few loads and notes reads as written.
func TestSynthetic(t *testing.T) {
	prpsinfo := make([]byte, 136)
	prpsinfo[1] = 'S'
	binary.LittleEndian.PutUint32(prpsinfo[16:], 1000)
	binary.LittleEndian.PutUint32(prpsinfo[24:], 4321)
	copy(prpsinfo[40:], "synth")
	copy(prpsinfo[56:], "synth --flag")
	b := synthCore([]synthLoad{
		{vaddr: 0x20000, memsz: 2 * pageSize, data: page(2), flags: 5}, // unsorted, half in core
		{vaddr: 0x10000, memsz: pageSize, data: page(1)},
		{vaddr: 0x30000, memsz: pageSize},
	}, []synthNote{
		{"CORE", ntPrpsinfo, prpsinfo},
		{"CORE", ntFile, fileNoteOf(MappedFile{0x20000, 0x22000, 0x3000, "/nonexistent/lib.so"})},
	})
	c, err := openBytes(t, b, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []procfs.Region{
		{Start: 0x10000, End: 0x11000, Perms: procfs.Perms{Read: true, Write: true}},
		{Start: 0x20000, End: 0x22000, Perms: procfs.Perms{Read: true, Exec: true}, Offset: 0x3000, Path: "/nonexistent/lib.so"},
		{Start: 0x30000, End: 0x31000, Perms: procfs.Perms{Read: true, Write: true}},
	}
	if got := c.Regions(); !slices.Equal(got, want) {
		t.Errorf("regions %+v, want %+v", got, want)
	}
	if got := readCapture(t, c, 0x10ff0, 0x20); !bytes.Equal(got, append(bytes.Repeat([]byte{1}, 16), make([]byte, 16)...)) {
		t.Errorf("across a gap: % x", got)
	}
	sources := map[uint64]string{
		0x10000: "in core",
		0x20000: "in core to +0x1000, then missing: /nonexistent/lib.so: not found",
		0x30000: "missing: left out of the core",
	}
	for _, r := range c.Regions() {
		if s := c.Source(r).String(); s != sources[r.Start] {
			t.Errorf("%s: %q, want %q", r.Name(), s, sources[r.Start])
		}
	}
	p, ok := c.Process()
	if !ok || p != (Process{PID: 4321, UID: 1000, State: 'S', Name: "synth", Args: "synth --flag"}) {
		t.Errorf("process %+v", p)
	}
	if c.Origin() != "kernel" || c.Truncated() || len(c.Warnings()) != 0 {
		t.Errorf("origin %q, truncated %v, warnings %q", c.Origin(), c.Truncated(), c.Warnings())
	}
}

// TestNotCores: files that are no ELF core fail with one line, ErrNotCore
// where it is the file's content that is wrong.
func TestNotCores(t *testing.T) {
	good := synthCore([]synthLoad{{vaddr: 0x10000, memsz: pageSize, data: page(1)}}, nil)
	le := binary.LittleEndian
	patch := func(at int, v uint64, size int) []byte {
		b := bytes.Clone(good)
		switch size {
		case 2:
			le.PutUint16(b[at:], uint16(v))
		case 8:
			le.PutUint64(b[at:], v)
		}
		return b
	}
	program, err := os.ReadFile("testdata/corefixture")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		b          []byte
	}{
		{"empty", "no ELF header", nil},
		{"text", "no ELF header", []byte("just some text, long enough for a header\n")},
		{"a program", "an ELF file of type ET_DYN", program},
		{"cut in its header", "the ELF header is cut short", good[:40]},
		{"32-bit, cut in its header", "the ELF header is cut short", append([]byte("\x7fELF\x01\x01\x01"), make([]byte, 20)...)},
		{"no class", "ELF class 0", append([]byte("\x7fELF\x00\x01\x01"), make([]byte, 60)...)},
		{"no byte order", "ELF byte order 3", append([]byte("\x7fELF\x02\x03\x01"), make([]byte, 60)...)},
		{"too many program headers", "65534 program headers at 0x40: past the end", patch(56, 0xfffe, 2)},
		{"program headers far away", "past the end of the file", patch(32, 1<<62, 8)},
		{"odd program headers", "program headers of 55 bytes", patch(54, 55, 2)},
		{"extended numbering without its section", "extended segment numbering without its section header", patch(56, 0xffff, 2)},
		{"a segment past 2^64", "ends past 2^64", patch(ehdrSize+phdrSize+8, 1<<64-10, 8)},
		{"a load past 2^64", "ends past 2^64", patch(ehdrSize+phdrSize+16, 1<<64-10, 8)},
		{"overlapping loads", "the segments at 0x10000 and 0x10800 overlap", synthCore([]synthLoad{
			{vaddr: 0x10000, memsz: pageSize}, {vaddr: 0x10800, memsz: pageSize}}, nil)},
	} {
		_, err := openBytes(t, tc.b, OpenOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrNotCore) {
			t.Errorf("%s: %v is not ErrNotCore", tc.name, err)
		}
	}
	for _, path := range []string{t.TempDir(), filepath.Join(t.TempDir(), "none")} {
		if _, err := Open(path, OpenOptions{}); err == nil {
			t.Errorf("%s opens", path)
		}
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := Open(fifo, OpenOptions{}); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("a FIFO: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO hangs")
	}
}

// TestLyingCores: what is wrong inside a core's notes and segments is
// passed over and said, the rest read.
func TestLyingCores(t *testing.T) {
	load := synthLoad{vaddr: 0x10000, memsz: pageSize, data: page(1)}
	le := binary.LittleEndian
	hugeCount := le.AppendUint64(nil, 1<<62)
	hugeCount = le.AppendUint64(hugeCount, pageSize)
	noNUL := fileNoteOf(MappedFile{0x10000, 0x11000, 0, "/lib"})
	noNUL = noNUL[:len(noNUL)-1]
	for _, tc := range []struct {
		name, warning string
		loads         []synthLoad
		notes         []synthNote
		b             func([]byte) []byte
	}{
		{"NT_FILE counting 2^62 files", "an NT_FILE of 16 bytes counts 4611686018427387904 files", nil, []synthNote{{"CORE", ntFile, hugeCount}}, nil},
		{"NT_FILE names without NUL", "an NT_FILE with 0 paths for 1 files", nil, []synthNote{{"CORE", ntFile, noNUL}}, nil},
		{"NT_FILE with odd pages", "an NT_FILE with pages of 0 bytes", nil, []synthNote{{"CORE", ntFile, make([]byte, 16)}}, nil},
		{"NT_FILE entry backwards", "an NT_FILE entry 0x11000-0x10000", nil, []synthNote{{"CORE", ntFile, fileNoteOf(MappedFile{0x11000, 0x10000, 0, "/x"})}}, nil},
		{"NT_PRPSINFO of an odd size", "an NT_PRPSINFO of 100 bytes", nil, []synthNote{{"CORE", ntPrpsinfo, make([]byte, 100)}}, nil},
		{"NT_PRSTATUS too short", "an NT_PRSTATUS of 50 bytes", nil, []synthNote{{"CORE", ntPrstatus, make([]byte, 50)}}, nil},
		{"NT_SIGINFO too short", "an NT_SIGINFO of 8 bytes", nil, []synthNote{{"CORE", ntSiginfo, make([]byte, 8)}}, nil},
		{"smaps that do not parse", "procmem's smaps note", nil, []synthNote{{procmemName, ntProcmemSmaps, []byte("not smaps\n")}}, nil},
		{"a note past its segment", "runs past the end of its segment", nil, []synthNote{{"CORE", ntAuxv, make([]byte, 16)}}, func(b []byte) []byte {
			le.PutUint32(b[ehdrSize+phdrSize*2+4:], 1<<20) // descsz
			return b
		}},
		{"notes past the end of the file", "the notes at 0x10000000 are cut short", nil, []synthNote{{"CORE", ntAuxv, make([]byte, 16)}}, func(b []byte) []byte {
			le.PutUint64(b[ehdrSize+8:], 1<<28)
			return b
		}},
		{"a load holding more than its size", "holds 0x1000 bytes of its 0x800", []synthLoad{{vaddr: 0x10000, memsz: 0x800, data: page(1)}}, nil, nil},
	} {
		loads := tc.loads
		if loads == nil {
			loads = []synthLoad{load}
		}
		b := synthCore(loads, tc.notes)
		if tc.b != nil {
			b = tc.b(b)
		}
		c, err := openBytes(t, b, OpenOptions{})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if w := strings.Join(c.Warnings(), "; "); !strings.Contains(w, tc.warning) {
			t.Errorf("%s: warnings %q, want %q", tc.name, w, tc.warning)
		}
		if got := readCapture(t, c, 0x10000, 4); !bytes.Equal(got, []byte{1, 1, 1, 1}) {
			t.Errorf("%s: the load reads % x", tc.name, got)
		}
	}
}

// TestTruncated: a core cut short (systemd-coredump cuts cores past its
// limit) opens; what is past its end is a hole, said so.
func TestTruncated(t *testing.T) {
	addrs := fixtureAddrs(t)
	whole, err := os.ReadFile("testdata/kernel.core")
	if err != nil {
		t.Fatal(err)
	}
	plain := openFixture(t, "kernel.core", OpenOptions{})
	heap, _ := procfs.RegionAt(plain.Regions(), addrs["heap"])
	cutAt := uint64(plain.Layout(heap).Offset) + 0x1000 // inside the heap's data
	c, err := openBytes(t, whole[:cutAt], OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Truncated() || c.Size() != uint64(len(whole)) {
		t.Errorf("truncated %v, size %d of %d", c.Truncated(), c.Size(), len(whole))
	}
	s := c.Source(heap)
	if s.InCore != 0x1000 || s.String() != "in core to +0x1000, then missing: the core is cut short" {
		t.Errorf("the heap: %+v: %s", s, s)
	}
	wantMarker(t, c, "the global", addrs["global"], "procmem fixture global marker")
	if got := readCapture(t, c, addrs["anon"], 8); !bytes.Equal(got, make([]byte, 8)) {
		t.Errorf("past the end: % x", got)
	}
	for _, r := range c.Regions() {
		l := c.Layout(r)
		if uint64(l.Offset)+l.InCore > cutAt && l.InCore > 0 {
			t.Errorf("%s: %d bytes in core at %#x, past the end %#x", r.Name(), l.InCore, l.Offset, cutAt)
		}
	}

	// A compressed stream cut short: what came before it is there.
	zst, err := os.ReadFile("testdata/kernel.core.zst")
	if err != nil {
		t.Fatal(err)
	}
	c, err = openBytes(t, zst[:len(zst)*3/4], OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Truncated() || !strings.Contains(strings.Join(c.Warnings(), ";"), "the compressed core ends early") {
		t.Errorf("a cut zstd stream: truncated %v, warnings %q", c.Truncated(), c.Warnings())
	}
	wantMarker(t, c, "the global", addrs["global"], "procmem fixture global marker")
	if _, err := openBytes(t, zst[:200], OpenOptions{}); err == nil || !strings.Contains(err.Error(), "decompressing: unexpected EOF") {
		t.Errorf("a zstd stream cut before its first block's end: %v", err)
	}
}

// TestCompressedBounds: a compressed core never takes more than it is
// allowed: memory for its data, its size, an xz dictionary.
func TestCompressedBounds(t *testing.T) {
	if _, err := Open("testdata/kernel.core.zst", OpenOptions{MemoryLimit: 64 << 10}); err == nil || !strings.Contains(err.Error(), "more than 64 KiB of data, more than memory should hold") {
		t.Errorf("a memory limit of 64 KiB: %v", err)
	}
	if _, err := Open("testdata/kernel.core.lz4", OpenOptions{MaxSize: 1 << 19}); err == nil || !strings.Contains(err.Error(), "decompresses to more than 512 KiB") {
		t.Errorf("a size limit of 512 KiB: %v", err)
	}
	// The dictionary byte of the first block header (after the 12 bytes
	// of the stream header: size, flags, filter id, property size,
	// property), set to claim 1.5 GiB, its CRC32 made right.
	xz, err := os.ReadFile("testdata/kernel.core.xz")
	if err != nil {
		t.Fatal(err)
	}
	size := (int(xz[12]) + 1) * 4
	header := xz[12 : 12+size]
	if header[1]&0xc0 != 0 || header[2] != 0x21 || header[3] != 1 {
		t.Fatalf("the fixture's block header is not as expected: % x", header)
	}
	header[4] = 39 // 3 << 30
	binary.LittleEndian.PutUint32(header[size-4:], crc32.ChecksumIEEE(header[:size-4]))
	if _, err := openBytes(t, xz, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "a dictionary of 3072 MiB, more than procmem allocates") {
		t.Errorf("an xz dictionary of 3 GiB: %v", err)
	}
	// A stream that is no stream.
	if _, err := openBytes(t, append([]byte{0x28, 0xb5, 0x2f, 0xfd}, bytes.Repeat([]byte{0xff}, 64)...), OpenOptions{}); err == nil {
		t.Error("a zstd magic before garbage opens")
	}
}

// TestExtendedNumbering: with e_phnum PN_XNUM, the number of program
// headers is section 0's sh_info, as the kernel writes it for more than
// 65,534 mappings.
func TestExtendedNumbering(t *testing.T) {
	b := synthCore([]synthLoad{{vaddr: 0x10000, memsz: pageSize, data: page(7)}}, nil)
	le := binary.LittleEndian
	le.PutUint16(b[56:], 0xffff)
	le.PutUint64(b[40:], uint64(len(b))) // e_shoff: a section header at the end
	le.PutUint16(b[58:], 64)             // e_shentsize
	le.PutUint16(b[60:], 1)              // e_shnum
	sh := make([]byte, 64)
	le.PutUint32(sh[44:], 2) // sh_info: the PT_NOTE and the load
	b = append(b, sh...)
	c, err := openBytes(t, b, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Regions()) != 1 || c.Origin() != "kernel" {
		t.Errorf("regions %+v, origin %q", c.Regions(), c.Origin())
	}
}

// TestBigFileNote: an NT_FILE of 4 MiB (the kernel writes none that big)
// is read, in time and memory bound by its size.
func TestBigFileNote(t *testing.T) {
	var files []MappedFile
	path := "/" + strings.Repeat("a long path/", 16) + "lib.so"
	for i := range uint64(20000) {
		files = append(files, MappedFile{Start: 0x10000 + i*pageSize, End: 0x11000 + i*pageSize, Path: path})
	}
	note := fileNoteOf(files...)
	if len(note) < 4<<20 {
		t.Fatalf("the note is %d bytes", len(note))
	}
	c, err := openBytes(t, synthCore(nil, []synthNote{{"CORE", ntFile, note}}), OpenOptions{NoMappedFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files()) != len(files) || len(c.Regions()) != len(files) {
		t.Errorf("%d files, %d regions; want %d", len(c.Files()), len(c.Regions()), len(files))
	}
}

// TestCacheDir: a compressed core decompressed into a directory leaves
// nothing there, and cannot be written; a directory that cannot hold an
// unlinked file says so.
func TestCacheDir(t *testing.T) {
	dir := t.TempDir()
	c := openFixture(t, "kernel.core.zst", OpenOptions{CacheDir: dir})
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the cache directory holds %d entries", len(entries))
	}
	for _, c := range []*Capture{c, openFixture(t, "kernel.core.zst", OpenOptions{})} {
		if _, err := c.Data().WriteAt([]byte("x"), 0); err == nil {
			t.Errorf("the decompressed core in %s can be written", c.Data().Name())
		}
	}
	if _, err := Open("testdata/kernel.core.zst", OpenOptions{CacheDir: filepath.Join(dir, "none")}); err == nil || !strings.Contains(err.Error(), "cannot hold an unlinked file") {
		t.Errorf("a cache directory that does not exist: %v", err)
	}
}

// TestSparseWriter: whatever pieces a decoder hands over, the pages that
// hold data are written and the rest stay holes.
func TestSparseWriter(t *testing.T) {
	want := make([]byte, 5*pageSize+100)
	copy(want[pageSize+10:], "data in the second page")
	want[3*pageSize] = 1
	want[len(want)-1] = 2 // in the last, partial page
	for _, r := range []io.Reader{bytes.NewReader(want), iotest.OneByteReader(bytes.NewReader(want)), iotest.HalfReader(bytes.NewReader(want))} {
		f, err := sparseFile("")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		n, err := writeSparse(f, r, limits{})
		if err != nil || n != int64(len(want)) {
			t.Fatalf("%d bytes, %v", n, err)
		}
		f.Truncate(n)
		got, _ := io.ReadAll(io.NewSectionReader(f, 0, n))
		if !bytes.Equal(got, want) {
			t.Errorf("%T: the file differs from what was written", r)
		}
		if data := dataBytes(t, f); data != 2*pageSize+100 {
			t.Errorf("%T: %d bytes of data, want the two pages and the last part with data", r, data)
		}
	}
}
