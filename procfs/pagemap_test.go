package procfs

import (
	"os"
	"reflect"
	"syscall"
	"testing"
	"unsafe"
)

func TestPagemapScan(t *testing.T) {
	page := os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 16*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	mem[0] = 1
	mem[5*page] = 1
	mem[6*page+100] = 1
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
	at := func(i int) uint64 { return base + uint64(i*page) }

	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pm, err := p.OpenPagemap()
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	ranges, err := pm.Scan(at(0), at(16))
	if err != nil {
		t.Fatal(err)
	}
	var data []PageRange
	for _, r := range ranges {
		if r.HoldsData() {
			data = append(data, PageRange{r.Start, r.End, 0})
		}
	}
	want := []PageRange{{at(0), at(1), 0}, {at(5), at(7), 0}}
	if !reflect.DeepEqual(data, want) {
		t.Errorf("pages with data: %x, want %x (all: %+v)", data, want, ranges)
	}
	if n, err := pm.Resident(at(0), at(16)); err != nil || n != uint64(3*page) {
		t.Errorf("Resident = %d, %v; want 3 pages", n, err)
	}
	// The fallback reads the entries themselves and agrees on present pages.
	entries, err := pm.scanEntries(at(0)+7, at(16))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 2 || entries[0].Start != at(0)+7 || entries[0].End != at(1) || entries[1].Start != at(5) || entries[1].End != at(7) {
		t.Errorf("entries: %+v", entries)
	}
}

func TestHoldsData(t *testing.T) {
	for flags, want := range map[PageFlags]bool{
		PagePresent: true, PagePresent | PageFile: true, PageSwapped: true,
		PagePresent | PageZero: false, PageSwapped | PageGuard: false, 0: false,
	} {
		if got := (PageRange{Flags: flags}).HoldsData(); got != want {
			t.Errorf("HoldsData(%#x) = %v, want %v", flags, got, want)
		}
	}
}
