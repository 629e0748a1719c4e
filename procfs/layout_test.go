package procfs

import (
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"unsafe"
)

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
	page := uint64(os.Getpagesize())
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
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))

	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	regions, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	var r Region
	for _, x := range regions {
		if x.Start == base {
			r = x
		}
	}
	if r.End != base+8*page || !r.Perms.Shared {
		t.Fatalf("mapping not found: %+v", r)
	}
	l, err := p.OpenLayout(r)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.file == nil {
		t.Fatal("no mapped file for a shared mapping")
	}
	at := func(i uint64) uint64 { return base + i*page }
	segs, err := l.Segments(r.Start, r.End)
	if err != nil {
		t.Fatal(err)
	}
	want := []Segment{{at(0), at(1), Hole}, {at(1), at(2), Data}, {at(2), at(3), Hole}, {at(3), at(4), Data}, {at(4), at(5), Hole}, {at(5), at(8), Data}}
	if !reflect.DeepEqual(segs, want) {
		t.Errorf("segments:\n got %x\nwant %x", segs, want)
	}
	// A stretch in the middle of a hole and one of data.
	if segs, _ := l.Segments(at(2)+10, at(2)+20); !reflect.DeepEqual(segs, []Segment{{at(2) + 10, at(2) + 20, Hole}}) {
		t.Errorf("inside a hole: %x", segs)
	}
	if segs, _ := l.Segments(at(3)+1, at(3)+2); !reflect.DeepEqual(segs, []Segment{{at(3) + 1, at(3) + 2, Data}}) {
		t.Errorf("inside data: %x", segs)
	}
	if err := l.Alive(); err != nil {
		t.Errorf("Alive: %v", err)
	}
}

func TestReadSegments(t *testing.T) {
	m := openMem(t, os.Getpid(), false)
	src := []byte("0123456789abcdef")
	addr := uint64(uintptr(unsafe.Pointer(&src[0])))
	b := []byte("xxxxxxxxxxxxxxxx")
	n, err := ReadSegments(m, b, addr, []Segment{{addr, addr + 4, Data}, {addr + 4, addr + 8, Hole}, {addr + 8, addr + 16, Data}})
	if err != nil || n != 16 || string(b) != "0123\x00\x00\x00\x0089abcdef" {
		t.Errorf("ReadSegments = %d, %v, %q", n, err, b)
	}
	n, err = ReadSegments(m, b, addr, []Segment{{addr, addr + 4, Data}, {addr + 4, addr + 16, Unreadable}})
	if err != nil || n != 4 {
		t.Errorf("stopping at a guard page: %d, %v", n, err)
	}
	if n, err := ReadSegments(m, b, addr, []Segment{{addr, addr + 16, Unreadable}}); n != 0 || err != syscall.EIO {
		t.Errorf("starting on a guard page: %d, %v", n, err)
	}
}
