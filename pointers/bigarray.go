package pointers

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The entries of a map being taken are one array of 16 bytes a pointer,
// hundreds of megabytes, written once in scattered batches and sorted in
// place, then encoded and let go. It lives outside Go's heap: mapped with
// huge pages where the kernel offers them (a 4 KiB page fault for every
// 256 entries written made the second pass several times slower than
// the first), and unmapped as soon as the index is built, so that its
// memory goes back at once instead of at the collector's leisure.

// entryArray is an array of n entries outside Go's heap. release gives
// the memory of its first k entries back (they read as zeros after);
// free gives all of it back.
type entryArray struct {
	es  []entry
	mem []byte // nil: on Go's heap, where mapping failed
}

func newEntryArray(n int) entryArray {
	size := n * int(unsafe.Sizeof(entry{}))
	if size == 0 {
		return entryArray{}
	}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return entryArray{es: make([]entry, n)}
	}
	unix.Madvise(mem, unix.MADV_HUGEPAGE) // a hint: refused where there are none
	return entryArray{es: unsafe.Slice((*entry)(unsafe.Pointer(&mem[0])), n), mem: mem}
}

func (a entryArray) release(k int) {
	if a.mem != nil {
		n := k * int(unsafe.Sizeof(entry{})) &^ (pageSize - 1)
		unix.Madvise(a.mem[:n], unix.MADV_DONTNEED)
	}
}

func (a entryArray) free() {
	if a.mem != nil {
		unix.Munmap(a.mem)
	}
}

var pageSize = unix.Getpagesize()
