package procfs

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"unsafe"
)

func TestMappedUpTo(t *testing.T) {
	page := uint64(os.Getpagesize())
	mem, err := syscall.Mmap(-1, 0, int(4*page), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
	if _, _, e := syscall.Syscall(syscall.SYS_MUNMAP, uintptr(base+2*page), uintptr(page), 0); e != 0 {
		t.Fatal(e)
	}
	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	q, err := p.OpenMapsQuery()
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	got, err := q.MappedUpTo(base, base+4*page)
	if errors.Is(err, ErrNoQuery) {
		// Before Linux 6.11: every question says so, and callers read
		// maps instead.
		if _, err := q.MappedUpTo(base, base+2*page); !errors.Is(err, ErrNoQuery) {
			t.Errorf("MappedUpTo without PROCMAP_QUERY: %v, want ErrNoQuery every time", err)
		}
		t.Log("no PROCMAP_QUERY on this kernel (Linux 6.11): checked that MappedUpTo says so")
		return
	}
	if err != nil || got != base+2*page {
		t.Errorf("MappedUpTo over a hole = %#x, %v; want %#x", got, err, base+2*page)
	}
	if got, err := q.MappedUpTo(base+2*page+5, base+3*page); err != nil || got != base+2*page+5 {
		t.Errorf("MappedUpTo inside the hole = %#x, %v", got, err)
	}
	if got, err := q.MappedUpTo(base, base+2*page); err != nil || got != base+2*page {
		t.Errorf("MappedUpTo of mapped pages = %#x, %v", got, err)
	}
}

// Find tells what maps tells of a mapping, with PROCMAP_QUERY and without.
func TestFind(t *testing.T) {
	page := uint64(os.Getpagesize())
	f, err := os.CreateTemp(t.TempDir(), "mapped")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(int64(4 * page))
	mem, err := syscall.Mmap(int(f.Fd()), int64(page), int(2*page), syscall.PROT_READ, syscall.MAP_SHARED)
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
	maps, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	want, ok := RegionAt(maps, base)
	if !ok {
		t.Fatal("the mapping is not in maps")
	}
	want.Path = ""
	for _, noQuery := range []bool{false, true} {
		q, err := p.OpenMapsQuery()
		if err != nil {
			t.Fatal(err)
		}
		q.noQuery = noQuery
		got, ok, err := q.Find(base + 5)
		named, _, _ := q.FindNamed(base + 5)
		q.Close()
		if err != nil || !ok || got != want {
			t.Errorf("Find (read maps: %v) = %+v, %v, %v; want %+v", noQuery, got, ok, err, want)
		}
		if want.Path = f.Name(); named != want {
			t.Errorf("FindNamed (read maps: %v) = %+v; want %+v", noQuery, named, want)
		}
		want.Path = ""
	}
}
