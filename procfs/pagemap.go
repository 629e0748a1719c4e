package procfs

// This file reads /proc/PID/pagemap, described in proc_pid_pagemap(5) and
// Documentation/admin-guide/mm/pagemap.rst: which pages of an address
// range are present in memory, swapped out, or the shared zero page.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PageFlags are the categories PAGEMAP_SCAN reports for a run of pages.
type PageFlags uint64

// The PAGE_IS_* categories of linux/fs.h.
const (
	PageFile    PageFlags = 1 << 2
	PagePresent PageFlags = 1 << 3
	PageSwapped PageFlags = 1 << 4
	PageZero    PageFlags = 1 << 5 // mapped to the shared zero page
	PageHuge    PageFlags = 1 << 6
	PageGuard   PageFlags = 1 << 8 // MADV_GUARD_INSTALL guard region
)

// PageRange is a run of pages [Start, End) with the same flags.
type PageRange struct {
	Start, End uint64
	Flags      PageFlags
}

// Pagemap is an open /proc/PID/pagemap.
type Pagemap struct {
	f       *os.File
	page    uint64
	noScan  bool // the kernel has no PAGEMAP_SCAN (before 6.7)
	noGuard bool // the kernel does not know PAGE_IS_GUARD (before 6.14)
}

// OpenPagemap opens the process's pagemap. The kernel allows it to whoever
// may read the process's maps (PTRACE_MODE_READ).
func (p *Process) OpenPagemap() (*Pagemap, error) {
	f, err := p.OpenFile("pagemap", unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return &Pagemap{f: f, page: uint64(os.Getpagesize())}, nil
}

// Close closes the pagemap.
func (pm *Pagemap) Close() error { return pm.f.Close() }

// pmScanArg is struct pm_scan_arg of linux/fs.h.
type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages       uint64
	categoryInverted, categoryMask, categoryAnyofMask, returnMask uint64
}

// pageRegion is struct page_region.
type pageRegion struct{ start, end, categories uint64 }

// _IOWR('f', 16, struct pm_scan_arg)
const pagemapScan = 0xc0606610

// Scan returns the runs of pages in [start, end) that are present or
// swapped, in address order; pages in neither state are left out.
func (pm *Pagemap) Scan(start, end uint64) ([]PageRange, error) {
	return pm.scan(start, end, false)
}

// ScanFile is Scan that also tells, with PageFile, which present pages
// are the mapped file's own (page cache) rather than anonymous copies: in
// a private file mapping, the pages the process wrote. It costs the
// kernel a look at every present page's struct page.
func (pm *Pagemap) ScanFile(start, end uint64) ([]PageRange, error) {
	return pm.scan(start, end, true)
}

func (pm *Pagemap) scan(start, end uint64, file bool) ([]PageRange, error) {
	if !pm.noScan {
		ranges, err := pm.scanIoctl(start, end, file)
		if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL) {
			return ranges, err
		}
		if errors.Is(err, unix.EINVAL) && !pm.noGuard {
			pm.noGuard = true
			if ranges, err = pm.scanIoctl(start, end, file); !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL) {
				return ranges, err
			}
		}
		pm.noScan = true
	}
	return pm.scanEntries(start, end)
}

func (pm *Pagemap) scanIoctl(start, end uint64, file bool) ([]PageRange, error) {
	// Only what callers use: PAGE_IS_FILE would make the kernel look up
	// the struct page of every present page, which costs more than the
	// rest of the walk (25-60 us per MiB here, against 2-3).
	returned := PagePresent | PageSwapped | PageZero | PageGuard
	if file {
		returned |= PageFile
	}
	if pm.noGuard {
		returned &^= PageGuard
	}
	// The kernel takes only a page-aligned start (EINVAL otherwise, which
	// would read as "no PAGEMAP_SCAN"); runs are cut back to the range.
	first := start
	start -= start % pm.page
	// At most one run per page; small reads need only a small vector.
	vec := make([]pageRegion, min(512, (end-start)/pm.page+2))
	var out []PageRange
	for start < end {
		arg := pmScanArg{
			size:              uint64(unsafe.Sizeof(pmScanArg{})),
			start:             start,
			end:               end,
			vec:               uint64(uintptr(unsafe.Pointer(&vec[0]))),
			vecLen:            uint64(len(vec)),
			categoryAnyofMask: uint64(PagePresent | PageSwapped),
			returnMask:        uint64(returned),
		}
		n, _, errno := unix.Syscall(unix.SYS_IOCTL, pm.f.Fd(), pagemapScan, uintptr(unsafe.Pointer(&arg)))
		if errno != 0 {
			return nil, fmt.Errorf("PAGEMAP_SCAN 0x%x-0x%x: %w", start, end, errno)
		}
		for _, r := range vec[:n] {
			out = append(out, PageRange{r.start, r.end, PageFlags(r.categories)})
		}
		if arg.walkEnd <= start {
			break
		}
		start = arg.walkEnd
	}
	if len(out) > 0 && out[0].Start < first {
		out[0].Start = first
		if out[0].Start >= out[0].End {
			out = out[1:]
		}
	}
	return out, nil
}

// Bits of a pagemap entry.
const (
	pmPresent = 1 << 63
	pmSwapped = 1 << 62
	pmFile    = 1 << 61
	pmGuard   = 1 << 58
)

// scanEntries reads the 8-byte pagemap entries of the range, for kernels
// without PAGEMAP_SCAN. It cannot tell the zero page (that needs the PFN,
// which only CAP_SYS_ADMIN sees), so a zero page counts as data here.
func (pm *Pagemap) scanEntries(start, end uint64) ([]PageRange, error) {
	first := start
	start -= start % pm.page
	var out []PageRange
	buf := make([]byte, 8*4096)
	for addr := start; addr < end; {
		n := min(uint64(len(buf)/8), (end-addr+pm.page-1)/pm.page)
		off := addr / pm.page * 8
		if off > 1<<63-1 {
			break
		}
		got, err := pm.f.ReadAt(buf[:n*8], int64(off))
		if got == 0 {
			return out, err
		}
		for i := 0; i+8 <= got; i += 8 {
			e := binary.LittleEndian.Uint64(buf[i:])
			var flags PageFlags
			if e&pmPresent != 0 {
				flags |= PagePresent
			}
			if e&pmSwapped != 0 {
				flags |= PageSwapped
			}
			if e&pmFile != 0 {
				flags |= PageFile
			}
			if e&pmGuard != 0 {
				flags |= PageGuard
			}
			if flags&(PagePresent|PageSwapped) != 0 {
				a := addr + uint64(i/8)*pm.page
				if k := len(out) - 1; k >= 0 && out[k].End == a && out[k].Flags == flags {
					out[k].End += pm.page
				} else {
					out = append(out, PageRange{a, min(a+pm.page, end), flags})
				}
			}
		}
		addr += uint64(got/8) * pm.page
	}
	if len(out) > 0 && out[0].Start < first {
		out[0].Start = first
	}
	return out, nil
}
