package memory

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/procmem/procmem/procfs"
	"golang.org/x/sys/unix"
)

// openReader opens the memory of process pid for the test.
func openReader(t testing.TB, pid int, write bool) (*procfs.Process, *Reader) {
	t.Helper()
	p, err := procfs.Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	rd, err := Open(p, Self, write)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return p, rd
}

// regionOf finds the mapping that holds addr.
func regionOf(t testing.TB, p *procfs.Process, addr uint64) procfs.Region {
	t.Helper()
	regions, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		if r.Contains(addr) {
			return r
		}
	}
	t.Fatalf("0x%x is not mapped", addr)
	return procfs.Region{}
}

func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&b[0]))) }

// anonymous maps n pages of private anonymous memory.
func anonymous(t testing.TB, n int) []byte {
	t.Helper()
	b, err := syscall.Mmap(-1, 0, n*int(pageSize), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	// One touch must fault in one page, whatever THP says.
	syscall.Madvise(b, syscall.MADV_NOHUGEPAGE)
	return b
}

func TestReadWriteSelf(t *testing.T) {
	p, rd := openReader(t, os.Getpid(), true)
	buf := anonymous(t, 1)
	copy(buf, "procmem marker: 0123456789")
	addr := addrOf(buf)
	g := rd.Region(regionOf(t, p, addr))
	defer g.Close()
	got := make([]byte, 26)
	if n, err := g.ReadAt(got, addr); err != nil || n != len(got) || string(got) != "procmem marker: 0123456789" {
		t.Fatalf("ReadAt = %d, %v, %q", n, err, got)
	}
	if _, err := rd.Writer(addr, addr+7).WriteFull([]byte("PROCMEM"), addr); err != nil {
		t.Fatal(err)
	}
	if string(buf[:8]) != "PROCMEM " {
		t.Errorf("write did not land: %q", buf[:8])
	}
	// Reads never leave the region.
	r := regionOf(t, p, addr)
	if _, err := g.ReadAt(got, r.End); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("read past the region: %v, want ErrOutOfRange", err)
	}
	if n, err := g.ReadAt(make([]byte, 64), r.End-10); n != 10 || err != nil {
		t.Errorf("read across the region's end = %d, %v; want the 10 bytes inside", n, err)
	}
}

// TestWriterBounds: no write lands outside the writer's range.
func TestWriterBounds(t *testing.T) {
	_, rd := openReader(t, os.Getpid(), true)
	buf := anonymous(t, 1)
	for i := range buf[:64] {
		buf[i] = '.'
	}
	addr := addrOf(buf)
	w := rd.Writer(addr+16, addr+32)
	if n, err := w.Write(bytes.Repeat([]byte("X"), 40), addr+16); n != 16 || err != nil {
		t.Errorf("write across the end = %d, %v; want 16", n, err)
	}
	if _, err := w.Write([]byte("Y"), addr+15); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("write before the range: %v", err)
	}
	if _, err := w.Write([]byte("Y"), addr+32); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("write at the end: %v", err)
	}
	if n, err := w.WriteFull(make([]byte, 17), addr+16); n != 0 || !errors.Is(err, ErrOutOfRange) {
		t.Errorf("WriteFull past the end = %d, %v", n, err)
	}
	if want := bytes.Repeat([]byte("."), 16); !bytes.Equal(buf[:16], want) || !bytes.Equal(buf[32:64], bytes.Repeat([]byte("."), 32)) {
		t.Errorf("canaries changed: %q", buf[:64])
	}
	if !bytes.Equal(buf[16:32], bytes.Repeat([]byte("X"), 16)) {
		t.Errorf("range not written: %q", buf[16:32])
	}
	_, ro := openReader(t, os.Getpid(), false)
	if _, err := ro.Writer(addr, addr+1).Write([]byte("Z"), addr); err == nil {
		t.Error("a read-only reader wrote")
	}
}

func TestUnreadable(t *testing.T) {
	p, rd := openReader(t, os.Getpid(), false)
	regions, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	for _, r := range regions {
		g := rd.Region(r)
		_, err := g.ReadAt(got, r.Start)
		switch r.Path {
		case "[vvar]", "[vvar_vclock]":
			if Classify(err) != Unreadable {
				t.Errorf("read of %s: %v, want EIO", r.Path, err)
			}
		case "[vsyscall]":
			if !errors.Is(err, ErrAddressRange) || Classify(err) != OutOfRange {
				t.Errorf("read of [vsyscall]: %v, want ErrAddressRange", err)
			}
		}
		g.Close()
	}
	// A page that is not mapped at all: the kernel's EIO.
	g := rd.Region(procfs.Region{Start: 0, End: pageSize, Perms: procfs.Perms{Read: true}, Path: "/not/mapped"})
	defer g.Close()
	if _, err := g.ReadAt(got, 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("read of page 0: %v, want EIO", err)
	}
}

// TestHoles: in 8 pages of which the test wrote two, the reader finds data
// on those two only, reads zeros elsewhere without touching them, and
// counts what pagemap shows resident. The test never reads the buffer itself: on a kernel without
// the shared zero page (pvm_no_zero_page) a read of an untouched page
// allocates one, and huge pages are off for it, so that a write faults in
// one page where THP or mTHP would fault in more.
func TestHoles(t *testing.T) {
	p, rd := openReader(t, os.Getpid(), false)
	buf := anonymous(t, 8)
	if err := syscall.Madvise(buf, unix.MADV_NOHUGEPAGE); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(buf)
	buf[2*pageSize] = 'A'
	buf[5*pageSize+7] = 'B'
	at := func(i uint64) uint64 { return addr + i*pageSize }
	if present := presentPages(t, addr, 8); !reflect.DeepEqual(present, []uint64{2, 5}) {
		t.Fatalf("pagemap shows pages %v present; the test wrote to pages 2 and 5 only", present)
	}
	r := regionOf(t, p, addr)
	r.Start, r.End = addr, at(8) // the mapping may have merged with a neighbour
	g := rd.Region(r)
	defer g.Close()
	got := make([]byte, 8*pageSize)
	if n, err := g.ReadAt(got, addr); n != len(got) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	want := make([]byte, 8*pageSize)
	want[2*pageSize] = 'A'
	want[5*pageSize+7] = 'B'
	if !bytes.Equal(got, want) {
		t.Error("bytes differ from what the test wrote")
	}
	seeks := []struct {
		from   uint64
		hole   bool
		want   uint64
		wantOK bool
	}{
		{at(0), false, at(2), true}, {at(2), true, at(3), true}, {at(3), false, at(5), true},
		{at(5) + 9, false, at(5) + 9, true}, {at(6), false, 0, false}, {at(6), true, at(6), true},
	}
	for _, s := range seeks {
		got, ok, err := g.Seek(s.from, s.hole)
		if err != nil || ok != s.wantOK || got != s.want {
			t.Errorf("Seek(page %d, hole %v) = %x, %v, %v; want %x, %v", (s.from-addr)/pageSize, s.hole, got, ok, err, s.want, s.wantOK)
		}
	}
	pm, err := p.OpenPagemap()
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	present := presentPages(t, addr, 8)
	if !reflect.DeepEqual(present, []uint64{2, 5}) {
		t.Errorf("after the reads pagemap shows pages %v present, want 2 and 5: the reader touched the holes", present)
	}
	if res := Resident(pm, []procfs.Region{r}); res[r.Start] != uint64(len(present))*pageSize {
		t.Errorf("Resident = %d, want the %d pages pagemap shows present", res[r.Start], len(present))
	}
}

// presentPages lists which of n pages at addr /proc/self/pagemap shows
// present (bit 63 of each 8-byte entry), for TestHoles.
func presentPages(t *testing.T, addr uint64, n int) []uint64 {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := make([]byte, 8*n)
	if _, err := f.ReadAt(entries, int64(addr/pageSize*8)); err != nil {
		t.Fatal(err)
	}
	var present []uint64
	for i := range n {
		if binary.LittleEndian.Uint64(entries[8*i:])&(1<<63) != 0 {
			present = append(present, uint64(i))
		}
	}
	return present
}

// TestFileLayout maps a sparse file shared and larger than the file: the
// layout follows the file's holes, and past its end leaves the pages to
// the kernel (which refuses them).
func TestFileLayout(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root: this test must not skip")
		}
		t.Skip("map_files needs CAP_SYS_ADMIN")
	}
	page := pageSize
	path := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(int64(5 * page))
	f.WriteAt([]byte("one"), int64(page))
	f.WriteAt([]byte("three"), int64(3*page))
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(8*page), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	base := addrOf(mem)
	p, rd := openReader(t, os.Getpid(), false)
	r := regionOf(t, p, base)
	if r.Start != base || r.End != base+8*page || !r.Perms.Shared {
		t.Fatalf("mapping not found: %+v", r)
	}
	g := rd.Region(r)
	defer g.Close()
	l := g.layout
	if l.file == nil {
		t.Fatal("no mapped file for a shared mapping")
	}
	at := func(i uint64) uint64 { return base + i*page }
	segs, err := l.segments(r.Start, r.End)
	if err != nil {
		t.Fatal(err)
	}
	// The file's data read from the file; past its end, left to the kernel.
	want := []segment{{at(0), at(1), hole}, {at(1), at(2), fromFile}, {at(2), at(3), hole}, {at(3), at(4), fromFile}, {at(4), at(5), hole}, {at(5), at(8), data}}
	if !reflect.DeepEqual(segs, want) {
		t.Errorf("segments:\n got %x\nwant %x", segs, want)
	}
	if segs, _ := l.segments(at(2)+10, at(2)+20); !reflect.DeepEqual(segs, []segment{{at(2) + 10, at(2) + 20, hole}}) {
		t.Errorf("inside a hole: %x", segs)
	}
	if segs, _ := l.segments(at(3)+1, at(3)+2); !reflect.DeepEqual(segs, []segment{{at(3) + 1, at(3) + 2, fromFile}}) {
		t.Errorf("inside data: %x", segs)
	}
	if err := l.alive(); err != nil {
		t.Errorf("alive: %v", err)
	}
	// Past the file's end the kernel refuses: the read stops there.
	b := make([]byte, 8*page)
	if n, err := g.ReadAt(b, base); n != int(5*page) || err != nil || string(b[page:page+3]) != "one" {
		t.Errorf("ReadAt = %d, %v", n, err)
	}
}

func TestReadSegments(t *testing.T) {
	_, rd := openReader(t, os.Getpid(), false)
	src := []byte("0123456789abcdef")
	addr := addrOf(src)
	b := []byte("xxxxxxxxxxxxxxxx")
	n, err := rd.readSegments(b, addr, []segment{{addr, addr + 4, data}, {addr + 4, addr + 8, hole}, {addr + 8, addr + 16, data}}, nil)
	if err != nil || n != 16 || string(b) != "0123\x00\x00\x00\x0089abcdef" {
		t.Errorf("readSegments = %d, %v, %q", n, err, b)
	}
	n, err = rd.readSegments(b, addr, []segment{{addr, addr + 4, data}, {addr + 4, addr + 16, unreadable}}, nil)
	if err != nil || n != 4 {
		t.Errorf("stopping at a guard page: %d, %v", n, err)
	}
	if n, err := rd.readSegments(b, addr, []segment{{addr, addr + 16, unreadable}}, nil); n != 0 || !errors.Is(err, syscall.EIO) {
		t.Errorf("starting on a guard page: %d, %v", n, err)
	}
}

// TestStream: holes go to the sink as zeros, data as bytes, and a page
// that cannot be read is reported and skipped.
func TestStream(t *testing.T) {
	p, rd := openReader(t, os.Getpid(), false)
	buf := anonymous(t, 6)
	addr := addrOf(buf)
	at := func(i uint64) uint64 { return addr + i*pageSize }
	copy(buf[pageSize:], "first")
	copy(buf[4*pageSize:], "second")
	r := regionOf(t, p, addr)
	r.Start, r.End = addr, at(6)
	g := rd.Region(r)
	defer g.Close()
	var zeros, datas [][2]uint64
	var text []byte
	unread, err := g.Stream(context.Background(), r.Start, r.End, make([]byte, 2*pageSize), Sink{
		Data: func(a uint64, b []byte) error {
			datas = append(datas, [2]uint64{a, a + uint64(len(b))})
			text = append(text, b[:6]...)
			return nil
		},
		Zeros: func(a, n uint64) error { zeros = append(zeros, [2]uint64{a, a + n}); return nil },
	})
	if err != nil || len(unread) != 0 {
		t.Fatalf("Stream: %v, unread %v", err, unread)
	}
	wantData := [][2]uint64{{at(1), at(2)}, {at(4), at(5)}}
	wantZeros := [][2]uint64{{at(0), at(1)}, {at(2), at(4)}, {at(5), at(6)}}
	if !reflect.DeepEqual(datas, wantData) || !reflect.DeepEqual(zeros, wantZeros) {
		t.Errorf("data %x zeros %x; want %x and %x", datas, zeros, wantData, wantZeros)
	}
	if string(text) != "first\x00second" {
		t.Errorf("data %q", text)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Stream(ctx, r.Start, r.End, make([]byte, pageSize), Sink{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Stream after cancel: %v", err)
	}
}

// startSleeper starts a child whose exec is over: until then its image
// changes (Go forks with CLONE_VM|CLONE_VFORK, then exec places the new
// program), and a reader made then is refused.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		p, err := procfs.Open(cmd.Process.Pid)
		if err == nil {
			st, err := p.Stat()
			p.Close()
			if err == nil && st.Comm == "sleep" && st.State == 'S' {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("sleep did not start")
		}
	}
}

func TestReadAfterExit(t *testing.T) {
	cmd := startSleeper(t)
	p, rd := openReader(t, cmd.Process.Pid, false)
	regions, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	for _, r := range regions {
		g := rd.Region(r)
		if _, err := g.ReadAt(make([]byte, 16), r.Start); !errors.Is(err, ErrGone) && !errors.Is(err, ErrAddressRange) {
			t.Errorf("read of %s after exit: %v, want ErrGone", r.Name(), err)
		}
		g.Close()
	}
	if _, err := Open(p, Self, false); Classify(err) != Gone {
		t.Errorf("Open after exit: %v, want gone", err)
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Class
	}{
		{nil, OK},
		{ErrGone, Gone},
		{&os.PathError{Op: "open", Path: "/proc/1/mem", Err: syscall.ESRCH}, Gone},
		{&os.PathError{Op: "open", Path: "/proc/1/mem", Err: syscall.EMFILE}, Exhausted},
		{syscall.ENFILE, Exhausted},
		{&os.PathError{Op: "open", Path: "/proc/1/mem", Err: syscall.EACCES}, NotPermitted},
		{syscall.EIO, Unreadable},
		{ErrAddressRange, OutOfRange},
		{errors.New("something"), Other},
	} {
		if got := Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestHoldsData(t *testing.T) {
	for flags, want := range map[procfs.PageFlags]bool{
		procfs.PagePresent: true, procfs.PagePresent | procfs.PageFile: true, procfs.PageSwapped: true,
		procfs.PagePresent | procfs.PageZero: false, procfs.PageSwapped | procfs.PageGuard: false, 0: false,
	} {
		if got := holdsData(flags); got != want {
			t.Errorf("holdsData(%#x) = %v, want %v", flags, got, want)
		}
	}
}

// TestUnmappedHole: a page unmapped after the reader was made reads as
// /proc/PID/mem reads it (EIO where a read starts on it, a short read
// where it runs into it), not as an untouched page's zeros.
func TestUnmappedHole(t *testing.T) {
	p, rd := openReader(t, os.Getpid(), false)
	buf := anonymous(t, 4)
	addr := addrOf(buf)
	buf[0] = 'A'
	r := regionOf(t, p, addr)
	r.Start, r.End = addr, addr+4*pageSize
	g := rd.Region(r)
	defer g.Close()
	if _, _, e := syscall.Syscall(syscall.SYS_MUNMAP, uintptr(addr+2*pageSize), uintptr(pageSize), 0); e != 0 {
		t.Fatal(e)
	}
	b := make([]byte, 4*pageSize)
	if n, err := g.ReadAt(b, addr); n != int(2*pageSize) || err != nil || b[0] != 'A' {
		t.Errorf("a read into the unmapped page = %d, %v; want the 2 pages before it", n, err)
	}
	if _, err := g.ReadAt(b, addr+2*pageSize); !errors.Is(err, syscall.EIO) {
		t.Errorf("a read of the unmapped page: %v, want EIO", err)
	}
	if n, err := g.ReadAt(b[:pageSize], addr+3*pageSize); n != int(pageSize) || err != nil {
		t.Errorf("a read of the untouched page after it = %d, %v", n, err)
	}
}

// TestPrivateFileLayout: a private file mapping reads the pages the
// process wrote (anonymous copies) from the process and the rest from the
// file, and reading it leaves the process's page tables as they were.
func TestPrivateFileLayout(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root: this test must not skip")
		}
		t.Skip("map_files needs CAP_SYS_ADMIN")
	}
	page := pageSize
	path := filepath.Join(t.TempDir(), "private")
	content := bytes.Repeat([]byte("file"), int(4*page/4))
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(4*page), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	copy(mem[page:], "COPY") // page 1 becomes the process's own
	base := addrOf(mem)
	at := func(i uint64) uint64 { return base + i*page }
	p, rd := openReader(t, os.Getpid(), false)
	r := regionOf(t, p, base)
	g := rd.Region(r)
	defer g.Close()
	segs, err := g.layout.segments(at(0), at(4))
	if err != nil {
		t.Fatal(err)
	}
	want := []segment{{at(0), at(1), fromFile}, {at(1), at(2), resident}, {at(2), at(4), fromFile}}
	if !reflect.DeepEqual(segs, want) {
		t.Errorf("segments:\n got %x\nwant %x", segs, want)
	}
	pm, err := p.OpenPagemap()
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	before, _ := pm.Scan(at(0), at(4))
	b := make([]byte, 4*page)
	if n, err := g.ReadAt(b, base); n != len(b) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	want2 := bytes.Clone(content)
	copy(want2[page:], "COPY")
	if !bytes.Equal(b, want2) {
		t.Error("bytes differ from the file with the process's copy")
	}
	if after, _ := pm.Scan(at(0), at(4)); !reflect.DeepEqual(after, before) {
		t.Errorf("the read mapped pages into the process: %v, then %v", before, after)
	}
}
