package procfs

import (
	"errors"
	"os"
	"reflect"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pages maps n pages of private anonymous memory without huge pages, so
// that a write faults in one page whatever the kernel's THP and mTHP
// settings.
func pages(t *testing.T, n int) []byte {
	t.Helper()
	mem, err := syscall.Mmap(-1, 0, n*os.Getpagesize(), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Madvise(mem, unix.MADV_NOHUGEPAGE); err != nil {
		t.Fatal(err)
	}
	return mem
}

func TestPagemapScan(t *testing.T) {
	page := os.Getpagesize()
	mem := pages(t, 16)
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
	var present []PageRange
	for _, r := range ranges {
		if r.Flags&PagePresent != 0 && r.Flags&PageZero == 0 {
			present = append(present, PageRange{r.Start, r.End, 0})
		}
	}
	want := []PageRange{{at(0), at(1), 0}, {at(5), at(7), 0}}
	if !reflect.DeepEqual(present, want) {
		t.Errorf("present pages: %x, want %x (all: %+v)", present, want, ranges)
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

// TestPagemapScanUnaligned: a range that starts inside a page is scanned
// by the ioctl too (the kernel wants an aligned start), cut to the range;
// before Linux 6.7, which has no PAGEMAP_SCAN, by reading the entries.
func TestPagemapScanUnaligned(t *testing.T) {
	page := os.Getpagesize()
	mem := pages(t, 4)
	mem[page] = 1
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
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
	_, err = pm.scanIoctl(base+9, base+uint64(4*page), false)
	noIoctl := errors.Is(err, unix.ENOTTY)
	if err != nil && !noIoctl {
		t.Fatalf("unaligned PAGEMAP_SCAN: %v", err)
	}
	ranges, err := pm.Scan(base+uint64(page)+9, base+uint64(4*page))
	if err != nil || pm.noScan != noIoctl {
		t.Fatalf("Scan: %v (fell back to entries: %v; the kernel has PAGEMAP_SCAN: %v)", err, pm.noScan, !noIoctl)
	}
	if len(ranges) != 1 || ranges[0].Start != base+uint64(page)+9 || ranges[0].End != base+uint64(2*page) {
		t.Errorf("ranges %+v", ranges)
	}
}
