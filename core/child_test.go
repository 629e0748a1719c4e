package core

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// A child process whose memory the tests know: the test binary run again
// with PROCMEM_CORE_CHILD set (see TestMain). It maps what its arguments
// ask for, prints "NAME 0xADDR" for each, then "ready", and waits for the
// end of its input.

func TestMain(m *testing.M) {
	if os.Getenv("PROCMEM_CORE_CHILD") != "" {
		os.Exit(runChild(os.Args[1:]))
	}
	os.Exit(m.Run())
}

const madvGuardInstall = 102 // MADV_GUARD_INSTALL, Linux 6.13

// runChild maps, for each argument:
//   - "anon": three pages of 0xab, private and anonymous;
//   - "guard": the same, its middle page a guard page (MADV_GUARD_INSTALL);
//   - "file=PATH": three pages of PATH, read-only and private, never touched;
//   - "shared=PATH": three pages of PATH shared (past its end if it is
//     shorter), with coredump_filter asking for shared file mappings;
//   - "heap=SIZE": SIZE bytes that compress as a heap does (see heapLike);
//   - "pages=N": N pages, written, in one reservation whose protections
//     alternate page by page (N mappings, as a large program has).
func runChild(args []string) int {
	for _, arg := range args {
		kind, path, _ := strings.Cut(arg, "=")
		var b []byte
		var err error
		switch kind {
		case "anon", "guard":
			b, err = unix.Mmap(-1, 0, 3*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err == nil {
				copy(b, bytes.Repeat([]byte{0xab}, len(b)))
			}
			if err == nil && kind == "guard" {
				err = unix.Madvise(b[pageSize:2*pageSize], madvGuardInstall)
			}
		case "file", "shared":
			b, err = mapFile(path, kind == "shared")
		case "heap":
			var size uint64
			if size, err = strconv.ParseUint(path, 0, 64); err == nil {
				b, err = unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			}
			if err == nil {
				heapLike(b)
			}
		case "pages":
			var n int
			if n, err = strconv.Atoi(path); err == nil {
				b, err = unix.Mmap(-1, 0, n*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			}
			for i := 0; err == nil && i < n; i++ {
				b[i*pageSize] = byte(i)
				if i%2 == 1 {
					err = unix.Mprotect(b[i*pageSize:(i+1)*pageSize], unix.PROT_READ)
				}
			}
		default:
			err = fmt.Errorf("unknown mapping %q", arg)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%s %#x\n", kind, uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// heapLike fills b as a heap looks to a compressor: in each page a
// quarter of noise, half of pointer-like words, a quarter of zeros; and
// every eighth 64 KiB never touched, a hole.
func heapLike(b []byte) {
	x := uint64(88172645463325252)
	for at := 0; at+pageSize <= len(b); at += pageSize {
		if at/(64<<10)%8 == 7 {
			continue
		}
		p := b[at : at+pageSize]
		for i := 0; i < 1024; i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			binary.LittleEndian.PutUint64(p[i:], x)
		}
		for i := 1024; i < 3072; i += 8 {
			binary.LittleEndian.PutUint64(p[i:], 0x7f0000000000+uint64(at+i)*2)
		}
	}
}

func mapFile(path string, shared bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	flags := unix.MAP_PRIVATE
	if shared {
		flags = unix.MAP_SHARED
		if err := os.WriteFile("/proc/self/coredump_filter", []byte("0x3b"), 0); err != nil {
			return nil, err
		}
	}
	return unix.Mmap(int(f.Fd()), 0, 3*pageSize, unix.PROT_READ, flags)
}

// child is a running child process.
type child struct {
	pid   int
	addrs map[string]uint64
}

// startChild runs a child with the given mappings until the test ends.
func startChild(t testing.TB, mappings ...string) child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, mappings...)
	cmd.Env = append(os.Environ(), "PROCMEM_CORE_CHILD=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	c := child{pid: cmd.Process.Pid, addrs: map[string]uint64{}}
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if sc.Text() == "ready" {
			return c
		}
		key, value, _ := strings.Cut(sc.Text(), " ")
		c.addrs[key], _ = strconv.ParseUint(strings.TrimPrefix(value, "0x"), 16, 64)
	}
	t.Fatal("the child did not get ready")
	return c
}

// build builds the core of process pid.
func build(t testing.TB, pid int) (*Image, *memory.Reader, *procfs.Process) {
	t.Helper()
	p, err := procfs.Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	rd, err := memory.Open(p, memory.Self, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	im, err := Build(p, rd)
	if err != nil {
		t.Fatal(err)
	}
	return im, rd, p
}

// coreOffset returns where in core im the memory at addr is, and how
// many bytes from there on the core holds of its mapping.
func coreOffset(t *testing.T, im *Image, addr uint64) (offset, held uint64) {
	t.Helper()
	for _, l := range im.loads {
		if l.region.Contains(addr) {
			into := addr - l.region.Start
			return l.offset + into, l.filesz - min(l.filesz, into)
		}
	}
	t.Fatalf("no load holds %#x", addr)
	return 0, 0
}

// elfFile writes a file that starts with an ELF magic, so a core keeps
// its first page, of n bytes: each page holds its number.
func elfFile(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i / pageSize)
	}
	copy(b, "\x7fELF core test file")
	path := t.TempDir() + "/mapped.elf"
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// rss is the Rss smaps shows for the mapping at addr of process pid.
func rss(t *testing.T, pid int, addr uint64) uint64 {
	t.Helper()
	p, err := procfs.Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mappings, err := p.Smaps()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mappings {
		if m.Start == addr {
			v, _ := m.Field("Rss")
			return v
		}
	}
	t.Fatalf("no mapping at %#x", addr)
	return 0
}

// TestImageReadsFilesNotTheTarget: the ELF header page a core keeps of a
// file mapping the process never touched is read from the file, and the
// process's page tables stay as they were. (Regions trimmed to the
// load's size named no map_files entry, and the page was read through
// the process, faulting it in.)
func TestImageReadsFilesNotTheTarget(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("map_files needs CAP_SYS_ADMIN: run as root")
	}
	path := elfFile(t, 3*pageSize)
	c := startChild(t, "file="+path)
	addr := c.addrs["file"]
	im, rd, _ := build(t, c.pid)
	off, held := coreOffset(t, im, addr)
	if held != pageSize {
		t.Fatalf("the core holds %d bytes of the file mapping, want its first page", held)
	}
	got := make([]byte, pageSize)
	if n, err := im.ReadAt(rd, got, off); n != pageSize || err != nil {
		t.Fatalf("reading the file's page from the core: %d, %v", n, err)
	}
	want, _ := os.ReadFile(path)
	if !bytes.Equal(got, want[:pageSize]) {
		t.Errorf("the core's page of the file differs from the file's")
	}
	if r := rss(t, c.pid, addr); r != 0 {
		t.Errorf("reading the core faulted %d bytes of the file mapping into the process", r)
	}
}

// TestImageUnreadablePagesAreZeros: a page of a core that cannot be read
// (a guard page; a shared file mapping past the end of its file) is
// zeros, as the kernel's dumper writes it: cat and dd of a core do not
// stop there. Kernels before 6.13 have no guard pages; the page past the
// end of a file holds the same property.
func TestImageUnreadablePagesAreZeros(t *testing.T) {
	mappings := []string{"anon", "shared=" + elfFile(t, pageSize)}
	if guardPages() {
		mappings = append(mappings, "guard")
	} else {
		t.Log("MADV_GUARD_INSTALL is not supported here: a file's end stands for guard pages")
	}
	c := startChild(t, mappings...)
	im, rd, _ := build(t, c.pid)
	fill := bytes.Repeat([]byte{0xab}, pageSize)
	zeros := make([]byte, pageSize)
	page0, _ := os.ReadFile(strings.TrimPrefix(mappings[1], "shared="))
	for _, tc := range []struct {
		kind string
		want [3][]byte
	}{
		{"anon", [3][]byte{fill, fill, fill}},
		{"shared", [3][]byte{page0, zeros, zeros}},
		{"guard", [3][]byte{fill, zeros, fill}},
	} {
		addr, ok := c.addrs[tc.kind]
		if !ok {
			continue
		}
		off, held := coreOffset(t, im, addr)
		if held < 3*pageSize {
			t.Errorf("%s: the core holds %d bytes, want the whole mapping", tc.kind, held)
			continue
		}
		got := make([]byte, 3*pageSize)
		if n, err := im.ReadAt(rd, got, off); n != len(got) || err != nil {
			t.Errorf("%s: reading the mapping from the core: %d bytes, %v", tc.kind, n, err)
		}
		if want := bytes.Join(tc.want[:], nil); !bytes.Equal(got, want) {
			t.Errorf("%s: the core's pages differ from what the process holds", tc.kind)
		}
		part := make([]byte, 100)
		if n, err := im.ReadAt(rd, part, off+pageSize+10); n != len(part) || err != nil || !bytes.Equal(part, tc.want[1][10:110]) {
			t.Errorf("%s: a read starting inside the second page: %d, %v", tc.kind, n, err)
		}
	}
}

// guardPages probes whether the kernel has MADV_GUARD_INSTALL.
func guardPages() bool {
	b, err := unix.Mmap(-1, 0, pageSize, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return false
	}
	defer unix.Munmap(b)
	return unix.Madvise(b, madvGuardInstall) == nil
}

// writeImage writes core im to a file, its holes as holes, as procmem
// core -o does.
func writeImage(t testing.TB, im *Image, rd *memory.Reader) string {
	t.Helper()
	path := t.TempDir() + "/core"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for off := uint64(0); off < im.Size(); {
		data, ok, err := im.Seek(rd, off, false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		hole, _, err := im.Seek(rd, data, true)
		if err != nil {
			t.Fatal(err)
		}
		for at := data; at < hole; {
			n, err := im.ReadAt(rd, buf[:min(uint64(len(buf)), hole-at)], at)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(buf[:n], int64(at)); err != nil {
				t.Fatal(err)
			}
			at += uint64(n)
		}
		off = hole
	}
	if err := f.Truncate(int64(im.Size())); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBuildThenOpen: a core procmem builds reads back as the process was:
// its regions as maps named them (the unreadable [vvar] and [vsyscall],
// which it does not dump, as holes), its memory at its addresses, its identity, its smaps; the file
// it mapped is read from the file while it is there, and is a hole, said
// so, once it is gone.
func TestBuildThenOpen(t *testing.T) {
	path := elfFile(t, 3*pageSize)
	c := startChild(t, "anon", "file="+path)
	im, rd, p := build(t, c.pid)
	corePath := writeImage(t, im, rd)
	maps, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	capture, err := Open(corePath, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer capture.Close()
	if got := capture.Regions(); !slices.Equal(got, maps) {
		t.Errorf("regions:\n%v\nmaps:\n%v", got, maps)
	}
	for _, r := range capture.Regions() {
		if s := capture.Source(r).String(); r.Unreadable() && s != "missing: left out of the core" {
			t.Errorf("%s: %s", r.Label(), s)
		}
	}
	if capture.Origin() != "procmem" || capture.Smaps() == nil || len(capture.Warnings()) > 0 {
		t.Errorf("origin %q, %d bytes of smaps, warnings %q", capture.Origin(), len(capture.Smaps()), capture.Warnings())
	}
	proc, ok := capture.Process()
	if exe, _ := os.Executable(); !ok || proc.PID != c.pid || capture.Executable() != exe {
		t.Errorf("process %+v, executable %q", proc, capture.Executable())
	}
	if th := capture.Threads(); len(th) == 0 || th[0].TID != c.pid {
		t.Errorf("threads %+v", th)
	}
	if got := readCapture(t, capture, c.addrs["anon"], 3*pageSize); !bytes.Equal(got, bytes.Repeat([]byte{0xab}, 3*pageSize)) {
		t.Errorf("the anonymous mapping reads differently from the core")
	}
	file, _ := procfs.RegionAt(capture.Regions(), c.addrs["file"])
	if s := capture.Source(file).String(); s != "in core to +0x1000, then from "+path {
		t.Errorf("the mapped file: %s", s)
	}
	if got := readCapture(t, capture, c.addrs["file"]+2*pageSize, 4); !bytes.Equal(got, []byte{2, 2, 2, 2}) {
		t.Errorf("the file's third page reads % x", got)
	}
	os.Remove(path)
	gone, err := Open(corePath, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	if s := gone.Source(file).String(); s != "in core to +0x1000, then missing: "+path+": not found" {
		t.Errorf("the mapped file, removed: %s", s)
	}
	if got := readCapture(t, gone, c.addrs["file"]+2*pageSize, 4); !bytes.Equal(got, make([]byte, 4)) {
		t.Errorf("the removed file's third page reads % x", got)
	}
}

// TestHeadReadsAlike: the headers and notes read the same whole as in
// pieces of any size, across the join of the notes and smaps' text, which
// Build keeps apart; the padding to the data is zeros.
func TestHeadReadsAlike(t *testing.T) {
	c := startChild(t, "anon")
	im, rd, _ := build(t, c.pid)
	whole := make([]byte, im.dataOff)
	if n, err := im.ReadAt(rd, whole, 0); n != len(whole) || err != nil {
		t.Fatalf("reading the head whole: %d, %v", n, err)
	}
	join := len(im.head)
	if !bytes.Equal(whole[:join], im.head) || !bytes.Equal(whole[join:join+len(im.smaps)], im.smaps) {
		t.Fatal("the head does not read as built")
	}
	if rest := whole[join+len(im.smaps):]; !bytes.Equal(rest, make([]byte, len(rest))) {
		t.Error("the padding after the notes is not zeros")
	}
	for _, size := range []int{1, 3, 4093, 4096, 65537} {
		var pieced []byte
		for off := 0; off < len(whole); {
			b := make([]byte, min(size, len(whole)-off))
			n, err := im.ReadAt(rd, b, uint64(off))
			if n != len(b) || err != nil {
				t.Fatalf("reading %d bytes at %d: %d, %v", len(b), off, n, err)
			}
			pieced = append(pieced, b...)
			off += n
		}
		if !bytes.Equal(pieced, whole) {
			t.Errorf("read in pieces of %d bytes, the head differs", size)
		}
	}
	if int(im.dataOff)%pageSize != 0 || im.dataOff < uint64(join+len(im.smaps)) {
		t.Errorf("data starts at %#x, after %d bytes of notes", im.dataOff, join+len(im.smaps))
	}
}
